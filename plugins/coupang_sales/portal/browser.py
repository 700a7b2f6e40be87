"""Chrome for the portal sessions: local headless/headed Chromium, or a remote Selenium Grid node."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

log = logging.getLogger(__name__)

DEFAULT_CHROMEDRIVER = "/usr/bin/chromedriver"
DEFAULT_CHROME_BINARY = "/usr/bin/chromium"
# Flags measured to work on the workers (see STACK.md); the background ones keep Chromium
# from reaching the internet, which it cannot here.
CHROME_FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1440,1000")
_FALSE = ("0", "false", "no", "off")


class _TypedTextRedactor(logging.Filter):
    """Blanks the keys typed into a page out of Selenium's wire log.

    At DEBUG level Selenium logs every WebDriver command with its body, and typing into
    a field sends the text twice: whole, and key by key (``'value': ['p', 'w', ...]``),
    which no secret masker recognises. The password goes through that command, so its
    body is replaced before any handler sees the record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args  # ("POST", url, body) for a command
        if isinstance(args, tuple) and len(args) == 3 and str(args[1]).endswith("/value"):
            record.args = (args[0], args[1], "{'text': '***', 'value': ['***']}")
        return True


_WIRE_LOG = logging.getLogger("selenium.webdriver.remote.remote_connection")
if not any(isinstance(f, _TypedTextRedactor) for f in _WIRE_LOG.filters):
    _WIRE_LOG.addFilter(_TypedTextRedactor())


class _LocalChrome(webdriver.Chrome):
    """Chrome that removes its throw-away profile when it quits."""

    profile_dir: Path | None = None

    def quit(self) -> None:
        try:
            super().quit()
        finally:
            if self.profile_dir is not None:
                shutil.rmtree(self.profile_dir, ignore_errors=True)
                self.profile_dir = None


def _options(download_dir: Path, headless: bool) -> Options:
    # No password manager or autofill: a profile kept between runs must never store the password.
    options = Options()
    if headless:
        options.add_argument("--headless=new")
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
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


def open_browser(download_dir: Path, *, headless: bool = True, remote_url: str | None = None,
                 profile_dir: Path | None = None) -> WebDriver:
    """A Chrome WebDriver saving downloads in ``download_dir``; the caller must ``quit()`` it.

    ``profile_dir`` is a persistent user-data dir (``coupang_sales.portal.profiles``, locked by
    the caller) kept after ``quit()``; without it a throw-away profile is made and removed.

    ``remote_url`` (or env SELENIUM_REMOTE_URL) selects a Selenium Grid node, with managed
    downloads enabled. Env SELENIUM_HEADLESS=false forces a headed browser (the real
    portals reject plain headless Chrome); CHROMEDRIVER_PATH and CHROME_BINARY override
    the local paths.
    """
    download_dir = Path(download_dir).resolve()
    download_dir.mkdir(parents=True, exist_ok=True)
    if os.environ.get("SELENIUM_HEADLESS", "").strip().lower() in _FALSE:
        headless = False
    remote_url = remote_url or os.environ.get("SELENIUM_REMOTE_URL") or None
    options = _options(download_dir, headless)

    if profile_dir is not None:
        options.add_argument(f"--user-data-dir={profile_dir}")
    if remote_url:
        options.enable_downloads = True
        log.info("opening a remote Chrome at %s (headless=%s)", remote_url, headless)
        return webdriver.Remote(command_executor=remote_url, options=options)

    # Without this Selenium Manager tries to download a driver from the internet.
    os.environ["SE_OFFLINE"] = "true"
    options.binary_location = os.environ.get("CHROME_BINARY", DEFAULT_CHROME_BINARY)
    throw_away = None
    if profile_dir is None:
        throw_away = Path(tempfile.mkdtemp(prefix="coupang-chrome-"))
        options.add_argument(f"--user-data-dir={throw_away}")
    service = Service(os.environ.get("CHROMEDRIVER_PATH", DEFAULT_CHROMEDRIVER))
    log.info("opening a local Chrome (headless=%s, %s profile)", headless,
             "a kept" if throw_away is None else "a throw-away")
    try:
        driver = _LocalChrome(service=service, options=options)
    except BaseException:
        if throw_away is not None:
            shutil.rmtree(throw_away, ignore_errors=True)
        raise
    driver.profile_dir = throw_away
    # Headless Chrome may ignore the download prefs; the CDP call makes the folder certain.
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    return driver
