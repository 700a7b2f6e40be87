"""Portal sandbox: Coupang Supplier Hub and Wing served from a scenario file for tests and demos."""

from sandbox.scenario import Scenario, ScenarioError, load_scenario
from sandbox.server import SandboxServer

__all__ = ["SandboxServer", "Scenario", "ScenarioError", "load_scenario"]
