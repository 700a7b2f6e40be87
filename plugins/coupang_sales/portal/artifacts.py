"""Failure artifacts of a portal session: a screenshot and the page source, with the credentials taken out first."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chromium.webdriver import ChromiumDriver
from selenium.webdriver.remote.webdriver import WebDriver

log = logging.getLogger(__name__)

# Run before any screenshot or page dump, so no credential can end up in an artifact.
_CLEAR_CREDENTIALS_JS = """
document.querySelectorAll("input[type=password], input[name=password], input[name=username], "
    + "input[autocomplete=one-time-code], input[name=code]").forEach((e) => {
    e.value = ''; e.setAttribute('value', '');
});
"""


class Redactor:
    """Takes a session's username and password out of a text (a page source, a portal's message)."""

    def __init__(self, username: str, password: str):
        self._username, self._password = username, password

    def __call__(self, text: str) -> str:
        for secret in (self._password, self._username):
            # A very short username would blank out ordinary text; passwords go whatever their length.
            if secret and (secret is self._password or len(secret) >= 3):
                text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return "Redactor()"


def accept_alert(driver: WebDriver) -> None:
    # A real page may ask for confirmation in a confirm() box; the sandbox does not.
    try:
        driver.switch_to.alert.accept()
    except NoAlertPresentException:
        pass


def stop_loading(driver: WebDriver) -> None:
    # A page still loading makes WebDriver commands wait for it; CDP stops it at once.
    if isinstance(driver, ChromiumDriver):
        driver.execute_cdp_cmd("Page.stopLoading", {})
    else:
        driver.execute_script("window.stop();")


def save_artifacts(driver: WebDriver, directory: Path, prefix: str, step_name: str,
                   redact: Callable[[str], str], *, settle: Iterable[Callable[[WebDriver], None]] = (
                       accept_alert, stop_loading)) -> None:
    """Screenshot and page source of a failed step as ``{prefix}_{step}_{time}.png/.html``, with the
    credential inputs emptied first and the credentials taken out of the source.

    Each part is tried on its own: a browser stuck mid-navigation may refuse one and
    still give the other.
    """
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S%f")
    base = directory / f"{prefix}_{step_name}_{stamp}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("could not save failure artifacts of %s: %s", step_name, type(exc).__name__)
        return
    for attempt in settle:
        try:
            attempt(driver)
        except WebDriverException:
            pass
    try:
        driver.execute_script(_CLEAR_CREDENTIALS_JS)
        # no screenshot of a page whose inputs may still hold credentials
        driver.save_screenshot(str(base.with_suffix(".png")))
    except WebDriverException as exc:
        log.warning("no screenshot of the failed step %s: %s", step_name, type(exc).__name__)
    try:
        base.with_suffix(".html").write_text(redact(driver.page_source), encoding="utf-8")
    except (WebDriverException, OSError) as exc:
        log.warning("no page source of the failed step %s: %s", step_name, type(exc).__name__)
    log.info("saved failure artifacts of %s as %s.*", step_name, base.name)
