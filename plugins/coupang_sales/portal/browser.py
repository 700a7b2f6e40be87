"""Chrome for the portal sessions, in the posture the live sites let in (REAL-PORTALS.md §2, §6).

Every public peer that gets past the portals' bot defences runs a *headed* browser: Chromium
under a virtual display with ``AutomationControlled`` disabled, or a real Chrome a person
started, attached over the DevTools protocol. So by default:

- the browser is headed; where the machine has no display (``DISPLAY`` unset: a worker, CI)
  the project starts Debian's ``Xvfb`` for that one browser and stops it when the browser
  quits (``-terminate`` ends it with its last client too, and it dies with the worker
  process, so a display is never left running);
- no automation switch (``excludeSwitches: enable-automation``, no automation extension) and
  ``--disable-blink-features=AutomationControlled``, so ``navigator.webdriver`` is false;
- headless only where a setting asks for it (``headless`` in the connection's extra, or
  ``SELENIUM_HEADLESS=true``): the portals refuse it.

Other documented settings: ``CHROME_BINARY`` (e.g. ``/usr/bin/google-chrome`` where a
deployment has Google Chrome) and ``CHROMEDRIVER_PATH``; ``debugger_address`` (connection
extra, or ``CHROME_DEBUGGER_ADDRESS``) attaches to a Chrome already running with
``--remote-debugging-port`` (the peers' way to use a profile a person signed on in; that
Chrome is never closed by the collector); ``remote_url`` (or ``SELENIUM_REMOTE_URL``): a
Selenium Grid node, whose own Xvfb makes it headed; ``route`` (``portal.routes``): the egress
address the browser leaves from (a proxy, through a local relay when it wants credentials, or the
Grid node that carries the route's capability).
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from coupang_sales.portal.routes import GRID_ROUTE_CAPABILITY, Route, chrome_proxy_flags

log = logging.getLogger(__name__)

DEFAULT_CHROMEDRIVER = "/usr/bin/chromedriver"
DEFAULT_CHROME_BINARY = "/usr/bin/chromium"
XVFB = "Xvfb"
SCREEN = "1440x1000x24"
# Flags measured to work on the workers (see STACK.md); the background ones keep Chromium
# from reaching the internet, which it cannot here.
CHROME_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1440,1000",
                "--disable-blink-features=AutomationControlled")
_TRUE = ("1", "true", "yes", "on")


def headless_from(value: object) -> bool:
    """A headless setting (the extra's ``headless``, ``SELENIUM_HEADLESS``) read as a boolean; unset is False."""
    return str(value).strip().lower() in _TRUE


def debugger_address_from(configured: str | None = None) -> str | None:
    """The address of a running Chrome to attach to: ``configured`` (a connection's ``debugger_address``),
    else ``CHROME_DEBUGGER_ADDRESS``; None to start a browser."""
    return configured or os.environ.get("CHROME_DEBUGGER_ADDRESS") or None


class _TypedTextRedactor(logging.Filter):
    """Blanks the keys typed into a page out of Selenium's wire log.

    At DEBUG level Selenium logs every WebDriver command with its body, and typing into
    a field sends the text twice: whole, and key by key (``'value': ['p', 'w', ...]``),
    which no secret masker recognises; typing at a person's pace sends each key as an
    action (``/actions``: ``{'type': 'keyDown', 'value': 'p'}``). The password goes through
    those commands, so their bodies are replaced before any handler sees the record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args  # ("POST", url, body) for a command
        if isinstance(args, tuple) and len(args) == 3:
            if str(args[1]).endswith("/value"):
                record.args = (args[0], args[1], "{'text': '***', 'value': ['***']}")
            elif str(args[1]).endswith("/actions"):
                record.args = (args[0], args[1], "{'actions': '***'}")
        return True


_WIRE_LOG = logging.getLogger("selenium.webdriver.remote.remote_connection")
if not any(isinstance(f, _TypedTextRedactor) for f in _WIRE_LOG.filters):
    _WIRE_LOG.addFilter(_TypedTextRedactor())


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class VirtualDisplay:
    """One Xvfb for one browser: started on a free display number, stopped by ``stop()``.

    ``detached``: the display of a WebDriver server that outlives the task (``portal.webdriver_server``):
    in a session of its own, not ended with this process nor with its last browser."""

    def __init__(self, *, detached: bool = False) -> None:
        if shutil.which(XVFB) is None:
            raise RuntimeError("no display and no Xvfb: install Debian's xvfb (make setup does), set DISPLAY, "
                               "or use a Selenium Grid node (SELENIUM_REMOTE_URL)")
        read, write = os.pipe()
        try:
            ends = () if detached else ("-terminate",)
            self.process = subprocess.Popen(
                [XVFB, "-displayfd", str(write), "-screen", "0", SCREEN, "-nolisten", "tcp", *ends, "-noreset"],
                pass_fds=(write,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                **({"start_new_session": True} if detached else {"preexec_fn": _die_with_parent}))
        finally:
            os.close(write)
        number = b""
        try:
            while not number.endswith(b"\n"):
                chunk = os.read(read, 16)
                if not chunk:
                    self.stop()
                    raise RuntimeError("Xvfb exited before it named its display")
                number += chunk
        finally:
            os.close(read)
        self.display = f":{number.decode().strip()}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _LocalChrome(webdriver.Chrome):
    """Chrome that removes its throw-away profile and stops its virtual display when it quits."""

    profile_dir: Path | None = None
    display: VirtualDisplay | None = None
    relay = None  # portal.relay.ProxyRelay of a route with credentials

    def quit(self) -> None:
        try:
            super().quit()
        finally:
            if self.relay is not None:
                self.relay.stop()
                self.relay = None
            if self.profile_dir is not None:
                shutil.rmtree(self.profile_dir, ignore_errors=True)
                self.profile_dir = None
            if self.display is not None:
                self.display.stop()
                self.display = None


def _options(download_dir: Path, headless: bool, *, attach: str | None = None) -> Options:
    # No password manager or autofill: a profile kept between runs must never store the password.
    options = Options()
    if attach:
        # A Chrome someone else started: its flags and profile are its own; only the address is ours.
        options.debugger_address = attach
        return options
    if headless:
        options.add_argument("--headless=new")
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_experimental_option("excludeSwitches", ["enable-automation"])
    options.add_experimental_option("useAutomationExtension", False)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(download_dir),
        "download.prompt_for_download": False,
        "download.directory_upgrade": True,
        "safebrowsing.enabled": False,
        "credentials_enable_service": False,
        "profile.password_manager_enabled": False,
        "autofill.profile_enabled": False,
        "autofill.credit_card_enabled": False,
    })
    return options


def session_options(download_dir: Path, *, headless: bool | None = None, profile_dir: Path | None = None,
                    proxy_url: str | None = None) -> Options:
    """The options of a browser session opened on a WebDriver server (``portal.webdriver_server``):
    the same posture as ``open_browser``'s, the account's profile, and the route's proxy (whose
    credentials, if any, a relay outside the browser adds)."""
    if headless is None:
        headless = headless_from(os.environ.get("SELENIUM_HEADLESS", ""))
    options = _options(Path(download_dir).resolve(), headless)
    options.binary_location = os.environ.get("CHROME_BINARY", DEFAULT_CHROME_BINARY)
    if profile_dir is not None:
        options.add_argument(f"--user-data-dir={profile_dir}")
    if proxy_url:
        for flag in chrome_proxy_flags(proxy_url):
            options.add_argument(flag)
    return options


def open_browser(download_dir: Path, *, headless: bool | None = None, remote_url: str | None = None,
                 profile_dir: Path | None = None, debugger_address: str | None = None,
                 route: Route | None = None) -> WebDriver:
    """A Chrome WebDriver saving downloads in ``download_dir``; the caller must ``quit()`` it.

    ``profile_dir`` is a persistent user-data dir (``coupang_sales.portal.profiles``, locked by
    the caller) kept after ``quit()``; without it a throw-away profile is made and removed; an
    attached Chrome keeps its own. ``headless`` None reads ``SELENIUM_HEADLESS`` (unset: headed).
    See the module's doc for ``remote_url`` and ``debugger_address``.
    """
    download_dir = Path(download_dir).resolve()
    download_dir.mkdir(parents=True, exist_ok=True)
    if headless is None:
        headless = headless_from(os.environ.get("SELENIUM_HEADLESS", ""))
    remote_url = remote_url or os.environ.get("SELENIUM_REMOTE_URL") or None
    debugger_address = debugger_address_from(debugger_address)
    options = _options(download_dir, headless, attach=None if remote_url else debugger_address)
    if route is not None and (route.proxy or route.grid_node) and debugger_address and not remote_url:
        raise RuntimeError(f"route {route.name}: an attached Chrome leaves from its own address; "
                           "give it no route, or do not attach")

    if remote_url:
        if profile_dir is not None:
            options.add_argument(f"--user-data-dir={profile_dir}")
        options.enable_downloads = True
        if route is not None and route.grid_node:
            options.set_capability(GRID_ROUTE_CAPABILITY, route.grid_node)
        elif route is not None and route.proxy:
            if route.needs_relay:
                raise RuntimeError(f"route {route.name}: a Grid node cannot reach this worker's relay for the "
                                   "proxy's credentials; make the route a Grid node (grid_node) instead")
            for flag in chrome_proxy_flags(route.proxy):
                options.add_argument(flag)
        log.info("opening a remote Chrome at %s (headless=%s)", remote_url, headless)
        return webdriver.Remote(command_executor=remote_url, options=options)

    # Without this Selenium Manager tries to download a driver from the internet.
    os.environ["SE_OFFLINE"] = "true"
    env = dict(os.environ)
    throw_away = display = None
    if debugger_address:
        log.info("attaching to the Chrome at %s", debugger_address)
    else:
        options.binary_location = os.environ.get("CHROME_BINARY", DEFAULT_CHROME_BINARY)
        if profile_dir is None:
            throw_away = Path(tempfile.mkdtemp(prefix="coupang-chrome-"))
        options.add_argument(f"--user-data-dir={profile_dir or throw_away}")
        if not headless and not env.get("DISPLAY"):
            display = VirtualDisplay()
            env["DISPLAY"] = display.display
    relay = None
    if route is not None and route.proxy and not debugger_address:
        proxy_url = route.proxy
        if route.needs_relay:
            from coupang_sales.portal.relay import ProxyRelay

            relay = ProxyRelay(route).start()
            proxy_url = relay.url
        for flag in chrome_proxy_flags(proxy_url):
            options.add_argument(flag)
        log.info("the browser leaves through route %s", route.describe())
        log.info("opening a local Chrome (%s, %s profile)",
                 "headless" if headless else f"headed on display {env.get('DISPLAY')}",
                 "a kept" if throw_away is None else "a throw-away")
    service = Service(os.environ.get("CHROMEDRIVER_PATH", DEFAULT_CHROMEDRIVER), env=env)
    try:
        driver = _LocalChrome(service=service, options=options)
    except BaseException:
        if throw_away is not None:
            shutil.rmtree(throw_away, ignore_errors=True)
        if display is not None:
            display.stop()
        if relay is not None:
            relay.stop()
        raise
    driver.profile_dir, driver.display, driver.relay = throw_away, display, relay
    # Headless Chrome may ignore the download prefs; the CDP call makes the folder certain.
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    return driver
