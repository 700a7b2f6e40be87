"""Command line: serve a scenario until SIGINT/SIGTERM (``python -m sandbox --scenario FILE``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from sandbox import SandboxServer, ScenarioError, load_scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--scenario", required=True, help="scenario file (JSON, or YAML)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--storage-port", type=int, default=0,
                        help="port of the storage origin Wing's report links point at (0 picks a free port)")
    parser.add_argument("--sso-port", type=int, default=0, help="port of Keycloak's origin (0 picks a free port)")
    parser.add_argument("--help-port", type=int, default=0, help="port of the help site's origin (0: a free port)")
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"sandbox: bad scenario: {exc}", file=sys.stderr)
        return 2

    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    server = SandboxServer(scenario, host=args.host, port=args.port, storage_port=args.storage_port,
                           sso_port=args.sso_port, help_port=args.help_port)
    server.start()
    try:
        print(f"sandbox listening on {server.url}", flush=True)
        print(f"report storage on {server.storage_url}", flush=True)
        print(f"sign-on (Keycloak) on {server.sso_url}, help site on {server.help_url}", flush=True)
        done.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
