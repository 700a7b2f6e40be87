"""A WebDriver server that outlives a task, so one browser session serves an account's whole run.

The live portals' sessions die with the browser (REAL-PORTALS.md §6): a browser per task means a
sign-on per task. Instead the first browser task of an account opens a WebDriver session on a
server that is not the task's child, and the later tasks attach to the same session:

- in a deployment the server is a Selenium Grid node (``SELENIUM_REMOTE_URL``), whose
  ``--session-timeout`` closes a session nobody drives any more;
- on one machine it is a ``chromedriver`` the project starts in its own process group, on its own
  virtual display, and stops when no session is left (``LocalWebDriverServer``). A session whose
  holder died is closed by the next task that finds its lease expired (``warehouse.leases``).

``attach()`` gives a WebDriver for an existing session; its ``quit()`` only detaches (the session
lives on for the next task); ``close_session()`` ends it for good.

Downloads: a local chromedriver's browser writes into the task's folder (a DevTools call names it
for each attaching task); a Grid node's browser writes on the node, so its sessions are opened
with Selenium's managed downloads (``se:downloadsEnabled``) and the task fetches each file from
the node (``get_downloadable_files`` / ``download_file``). Which of the two a server is, its
``/status`` tells: a Grid's lists ``nodes``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options

log = logging.getLogger(__name__)

DEFAULT_CHROMEDRIVER = "/usr/bin/chromedriver"
START_ATTEMPTS = 3  # chromedriver starts on a new port after losing the one picked for it


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/status", timeout=3) as response:
            return bool(json.loads(response.read()).get("value", {}).get("ready", True))
    except (OSError, ValueError):
        return False


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalWebDriverServer:
    """One ``chromedriver`` (and one Xvfb for its headed browsers) per machine, shared by every task.

    Its state (pids, port) is in ``<root>/server.json``, written under a file lock, so tasks on one
    machine find the same server; it runs in its own session (no task's death ends it).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.state_path = self.root / "server.json"

    def _read(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}

    def url(self) -> str:
        """The server's URL, started first when none answers."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read()
            if state.get("url") and _alive(state.get("pid")) and _answers(state["url"]):
                return state["url"]
            self._stop_processes(state)
            state = self._start()
            self.state_path.write_text(json.dumps(state))
            return state["url"]

    def _start(self) -> dict:
        env = dict(os.environ)
        display_pid = None
        if not env.get("DISPLAY"):
            from coupang_sales.portal.browser import VirtualDisplay

            display = VirtualDisplay(detached=True)
            env["DISPLAY"] = display.display
            display_pid = display.process.pid
        deadline = time.monotonic() + 20
        for _ in range(START_ATTEMPTS):
            # The port is free when picked, but another process may bind it before chromedriver does,
            # which then exits at once ('bind() failed: Address already in use'): pick another then.
            port = _free_port()
            driver = subprocess.Popen([os.environ.get("CHROMEDRIVER_PATH", DEFAULT_CHROMEDRIVER), f"--port={port}",
                                       "--allowed-ips=127.0.0.1", "--log-level=WARNING"],
                                      env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=open(self.root / "chromedriver.log", "a"), start_new_session=True)
            url = f"http://127.0.0.1:{port}"
            while driver.poll() is None and time.monotonic() <= deadline:
                if _answers(url):
                    log.info("started a WebDriver server at %s (display %s)", url, env.get("DISPLAY"))
                    return {"url": url, "pid": driver.pid, "display_pid": display_pid, "display": env.get("DISPLAY")}
                time.sleep(0.1)
            exited = driver.poll() is not None
            self._stop_processes({"pid": driver.pid})
            if not exited:  # running but not answering by the deadline: another port would not help
                break
        self._stop_processes({"display_pid": display_pid})
        raise RuntimeError(f"chromedriver did not start; see {self.root / 'chromedriver.log'}")

    @staticmethod
    def _stop_processes(state: dict) -> None:
        for key in ("pid", "display_pid"):
            pid = state.get(key)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)

    def stop(self) -> None:
        """Stop the server and every browser it runs (chromedriver's group holds them)."""
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._stop_processes(self._read())
            with contextlib.suppress(FileNotFoundError):
                self.state_path.unlink()


class _Attached(webdriver.Remote):
    """A WebDriver for a session that already exists; ``quit()`` detaches and leaves it running."""

    def __init__(self, server_url: str, session_id: str, *, managed_downloads: bool = False) -> None:
        self._existing, self._managed_downloads = session_id, managed_downloads
        super().__init__(command_executor=server_url, options=Options())

    def start_session(self, capabilities: dict) -> None:  # no new session: take the existing one
        self.session_id = self._existing
        # what Selenium's managed-download calls look for before they ask the Grid for the node's files
        self.caps = {"browserName": "chrome", **({"se:downloadsEnabled": True} if self._managed_downloads else {})}

    def quit(self) -> None:
        with contextlib.suppress(Exception):
            self.command_executor.close()


def _cdp(driver: webdriver.Remote, command: str, params: dict) -> None:
    """A DevTools command through chromedriver's ``goog/cdp/execute`` (a Remote has no ``execute_cdp_cmd``)."""
    driver.command_executor.add_command("coupangCdp", "POST", "/session/$sessionId/goog/cdp/execute")
    driver.execute("coupangCdp", {"cmd": command, "params": params})


_GRIDS: dict[str, bool] = {}


def is_grid(server_url: str) -> bool:
    """True for a Selenium Grid (its ``/status`` lists ``nodes``), False for a bare chromedriver.
    Asked once per server and process; a server that does not answer is taken for a chromedriver
    (the session call that follows then fails with the real reason)."""
    if server_url not in _GRIDS:
        try:
            with urllib.request.urlopen(f"{server_url.rstrip('/')}/status", timeout=10) as response:
                value = json.loads(response.read()).get("value") or {}
            _GRIDS[server_url] = isinstance(value, dict) and "nodes" in value
        except (OSError, ValueError):
            return False
    return _GRIDS[server_url]


def _local_downloads(driver: webdriver.Remote, download_dir: Path | None) -> None:
    """Point a chromedriver browser's downloads at this task's folder (a Grid node keeps its own)."""
    if download_dir is not None:
        _cdp(driver, "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})


def new_session(server_url: str, options: Options, *, download_dir: Path | None = None) -> webdriver.Remote:
    """A new browser session on the server (the caller records ``session_id`` and attaches later);
    on a Grid with managed downloads, whose files the tasks fetch from the node."""
    grid = is_grid(server_url)
    if grid:
        options.enable_downloads = True
    driver = webdriver.Remote(command_executor=server_url, options=options)
    if not grid:
        _local_downloads(driver, download_dir)
    return driver


def attach(server_url: str, session_id: str, *, download_dir: Path | None = None) -> webdriver.Remote:
    """The existing ``session_id`` on the server: downloading to this task's ``download_dir`` on a
    chromedriver, through the Grid's managed downloads on a Grid node."""
    grid = is_grid(server_url)
    driver = _Attached(server_url, session_id, managed_downloads=grid)
    if not grid:
        _local_downloads(driver, download_dir)
    return driver


def session_alive(server_url: str, session_id: str) -> bool:
    """True while the server still runs the session (``GET /session/{id}/url`` answers)."""
    try:
        with urllib.request.urlopen(f"{server_url}/session/{session_id}/url", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def close_session(server_url: str, session_id: str) -> bool:
    """End the session and its browser (``DELETE /session/{id}``); False when it was already gone."""
    request = urllib.request.Request(f"{server_url}/session/{session_id}", method="DELETE")
    try:
        with urllib.request.urlopen(request, timeout=30):
            return True
    except (urllib.error.URLError, OSError):
        return False
