"""A real Selenium Grid for tests: the Selenium server's standalone mode (router, distributor and one
node in one Java process, ``make setup`` fetches the jar), one slot per egress route.

Each slot's stereotype carries the route's pinning capability (``coupang:route``), as a deployment's
nodes do (``docker-compose.yaml``'s ``SE_NODE_STEREOTYPE_EXTRA``), one session at a time, managed
downloads on, and Chrome flags that send the slot's browser through the route's forward proxy: the
Grid merges a stereotype's ``goog:chromeOptions`` into the sessions it starts, so each slot leaves
from its own loopback address as each node of a deployment leaves from its own. The browsers are
headed, on an Xvfb the Grid runs in (a node image's own Xvfb).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import local_stack
from coupang_sales.portal.browser import VirtualDisplay
from coupang_sales.portal.routes import BYPASS_NONE, GRID_ROUTE_CAPABILITY

ROOT = Path(__file__).resolve().parents[2]
JAR = ROOT / ".venv" / "share" / "selenium" / "selenium-server-4.48.0.jar"


class SeleniumGrid:
    """``with SeleniumGrid(folder, {"r1": proxy_url, ...}, session_timeout=...) as grid: grid.url``"""

    def __init__(self, folder: Path, routes: dict[str, str], *, session_timeout: int = 300):
        if not JAR.is_file():
            raise RuntimeError(f"no Selenium server at {JAR}: run make setup")
        self.folder, self.routes, self.session_timeout = Path(folder), routes, session_timeout
        self.port = local_stack.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.folder / "grid.log"
        self.process: subprocess.Popen | None = None
        self.display: VirtualDisplay | None = None

    def _config(self) -> str:
        lines = ["[node]", "detect-drivers = false", "selenium-manager = false", "enable-managed-downloads = true",
                 f"max-sessions = {len(self.routes)}", "override-max-sessions = true",
                 f"session-timeout = {self.session_timeout}", ""]
        for name, proxy in self.routes.items():
            stereotype = {"browserName": "chrome", "platformName": "linux", GRID_ROUTE_CAPABILITY: name,
                          "goog:chromeOptions": {"args": [f"--proxy-server={proxy}",
                                                          f"--proxy-bypass-list={BYPASS_NONE}"]}}
            lines += ["[[node.driver-configuration]]", f"display-name = {json.dumps(name)}",
                      f"stereotype = {json.dumps(json.dumps(stereotype))}", "max-sessions = 1", ""]
        return "\n".join(lines)

    def __enter__(self) -> "SeleniumGrid":
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "grid.toml"
        config.write_text(self._config())
        self.display = VirtualDisplay()
        env = {**os.environ, "DISPLAY": self.display.display}
        self.process = subprocess.Popen(
            ["java", "-jar", str(JAR), "standalone", "--port", str(self.port), "--host", "127.0.0.1",
             "--config", str(config)], env=env, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Selenium server exited {self.process.returncode}; see {self.log_path}")
            try:
                if self.status().get("ready"):
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"the Selenium Grid was not ready within 120 s; see {self.log_path}")

    def status(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/status", timeout=10) as response:
            return json.loads(response.read())["value"]

    def sessions(self) -> dict[str, str]:
        """Route name -> session id of each busy slot."""
        busy = {}
        for node in self.status().get("nodes", []):
            for slot in node.get("slots", []):
                if slot.get("session"):
                    busy[slot["stereotype"].get(GRID_ROUTE_CAPABILITY)] = slot["session"]["sessionId"]
        return busy

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the server, its chromedrivers and their browsers
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None
        if self.display is not None:
            self.display.stop()
            self.display = None
