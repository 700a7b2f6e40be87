"""The shared sign-on (Keycloak realm 'seller' at xauth.coupang.com): its form, and signing on from a portal's home."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from coupang_sales.errors import CollectionError, ExportFormatError
from coupang_sales.portal.failures import step, unavailable, url_path
from coupang_sales.portal.pages import Page
from coupang_sales.portal.settings import Locator, locator
from coupang_sales.portal.waits import LANDED, ON_PORTAL

if TYPE_CHECKING:
    from coupang_sales.portal.settings import PortalSettings

log = logging.getLogger(__name__)

# The sign-on's selectors as packaged for the real site (portal/sign_on.json); a session
# uses its settings' (coupang_sales.portal.settings), which a deployment may override.
SIGN_ON_SELECTORS: dict[str, Locator] = {
    key: locator(value) for key, value in
    json.loads((Path(__file__).with_name("sign_on.json")).read_text(encoding="utf-8"))["selectors"].items()}
# Keycloak's path on xauth.coupang.com; the client never builds a URL with it (the chain
# starts at the portal's home), it only recognises it.
SIGN_ON_PATH = "/auth/realms/seller/protocol/openid-connect/auth"


class SignOnPage(Page):
    """The Keycloak sign-on form (xauth.coupang.com, realm 'seller')."""

    name = "sign-on page"

    def __init__(self, driver: WebDriver, selectors: Mapping[str, Locator], *, keystroke_seconds: float = 0.0):
        super().__init__(driver, selectors)
        self.keystroke_seconds = keystroke_seconds

    def submit(self, username: str, password: str) -> WebElement:
        """Fill in and submit the login form, a key every ``keystroke_seconds`` (``waits.keystroke``: a
        person's pace, ~110 ms as LM types; bot sensors time the keys); returns the form."""
        form = self.find("sign_on.form")
        for key, value in (("sign_on.username", username), ("sign_on.password", password)):
            field = self.find(key, form)
            # A remembered value must go first; asked as a yes/no, so the value itself is never
            # read back (it would be in the driver's debug log). clear() costs a round trip.
            if self.driver.execute_script("return arguments[0].value !== '';", field):
                field.clear()
            if self.keystroke_seconds <= 0:
                field.send_keys(value)
                continue
            # One W3C actions call: the browser types each key and pauses between them itself.
            keys = ActionChains(self.driver).click(field)
            for char in value:
                keys.send_keys(char).pause(self.keystroke_seconds)
            keys.perform()
        self.find("sign_on.submit", form).click()
        return form

    def error_text(self) -> str:
        found = self.find_all("sign_on.error")
        return found[0].text.strip() if found else ""


class SignOn:
    """Signing on, a part of ``PortalSession`` (whose navigation, waits and counters it uses).

    The sign-on starts at the portal's home and follows its redirects; "signed on" is the
    portal's landing rule. A portal adds refusals of its own (``_sign_on_refusals``,
    ``_refused``) and work after each sign-on (``_signed_on``).
    """

    portal_name: str
    base_url: str
    settings: PortalSettings
    selectors: dict[str, Locator]
    driver: WebDriver | None
    profile: Any
    sign_in_command: str | None
    sign_ons: int
    sms_steps: int
    _username: str
    _password: str

    def _at_home(self, page: str) -> bool:
        """Open the portal's home and wait for the landing page or the sign-on form; True (after
        ``_signed_on``) when it lands: the profile is still signed on, or Keycloak's live session
        signed it on again without the password.

        A page showing neither is asked for once more before it counts as a changed page: under load
        a late document of the browser's previous page (a signed-out page of another origin) has been
        seen to replace the home asked for. The stray page is logged; a second one raises."""
        expected = {"home": LANDED, "form": "sign_on.form"}
        self._get(self.base_url + self.settings.path("home"), page)
        try:
            found = self._wait_for(page, expected, sign_on=True)
        except ExportFormatError as exc:
            log.warning("%s: asking for the portal's home again, the browser showed another page: %s",
                        page, exc.detail)
            self._get(self.base_url + self.settings.path("home"), page)
            found = self._wait_for(page, expected, sign_on=True)
        if found == "home":
            self._signed_on()
            return True
        return False

    @step("login")
    def login(self) -> None:
        """Sign on from the portal's home, following its redirects (never a hand-built sign-on URL);
        raises CollectionError auth_challenge, bad_credentials, bot_rejected or portal_unavailable,
        or a refusal of the portal's own (see ``_sign_on_refusals``)."""
        log.info("signing on to %s from %s", self.portal_name, url_path(self.base_url + self.settings.path("home")))
        if not self._at_home("sign-on"):
            self._sign_on_here("sign-on")

    def resume(self) -> bool:
        """True when the profile is still signed on (the portal's home lands, perhaps renewed by a live
        single-sign-on session, which costs no password); False when only a password would sign on.
        Never submits the password: the caller decides whether a sign-on is worth it."""
        return self._at_home("sign-on")

    @step("login")
    def sign_in(self, ask_code: Callable[[], str], *, attempts: int = 3) -> bool:
        """A person-assisted sign-on (``python -m coupang_sales.sign_in``): like ``login()``, but an
        SMS step asks ``ask_code`` for the code (up to ``attempts`` times) instead of failing, so the
        profile becomes a device the portal knows. False if the profile was still signed on."""
        if self._at_home("sign-on"):
            return False
        self._sign_on_here("sign-on", ask_code=ask_code, attempts=attempts)
        return True

    def _sign_on_again(self) -> None:
        """Run the sign-on chain again from the portal's home after a request found the session gone:
        with Keycloak's session alive it lands without the form; else the form is filled in."""
        if not self._at_home("home"):
            self._sign_on_here("home")

    def _sign_on_refusals(self) -> Mapping[str, str]:
        """Pages of the portal's own that end a sign-on (outcome name -> selector key)."""
        return {}

    def _refused(self, outcome: str) -> CollectionError:
        """The error of a refusal named in ``_sign_on_refusals``."""
        raise NotImplementedError(f"{type(self).__name__} names the sign-on refusal {outcome!r} without its error")

    def _signed_on(self) -> None:
        """Called on the first portal page after each sign-on."""

    def _sign_on_here(self, page: str, *, anywhere: bool = False, ask_code: Callable[[], str] | None = None,
                      attempts: int = 3) -> None:
        """Submit the credentials on the sign-on page the browser shows, and judge the outcome.

        Signed on is the landing rule; with ``anywhere`` (a renewal that returns to the page
        asked for) any loaded page of the portal's host without a password field. An SMS step
        is ``auth_challenge`` unless ``ask_code`` (a person) gives the code."""
        self._mark_document()
        self.sign_ons += 1
        if self.profile is not None:
            self.profile.note_password_sign_on()
        log.info("submitting the password on the sign-on page (sign-on %d of this session)", self.sign_ons)
        SignOnPage(self.driver, self.selectors, keystroke_seconds=self.settings.wait("keystroke")).submit(
            self._username, self._password)
        self._wait_for_next_document(page)
        for attempt in range(attempts + 1):
            found = self._sign_on_outcome(page, anywhere=anywhere)
            if found != "sms":
                return
            if attempt == 0:
                self.sms_steps += 1
            if ask_code is None:
                hint = f" ({self.sign_in_command})" if self.sign_in_command else ""
                raise CollectionError(
                    "auth_challenge", f"{self.portal_name} asked for SMS verification (인증번호) after the password",
                    action="The portal does not know this browser profile yet: a person signs on once in it, "
                           f"entering the SMS code{hint}; later runs reuse the profile without the SMS step.")
            if attempt == attempts:
                break
            code = ask_code().strip()
            field = self.find_code_field()
            self._mark_document()
            field.clear()
            field.send_keys(code + "\n")  # Enter submits the code's form
            self._wait_for_next_document(page)
        raise CollectionError("auth_challenge", f"{self.portal_name} refused the SMS code {attempts} times")

    def find_code_field(self) -> WebElement:
        return Page(self.driver, self.selectors).find("sign_on.sms_code")

    def _sign_on_outcome(self, page: str, *, anywhere: bool) -> str:
        """After a form of the sign-on was submitted: 'home' when signed on, 'sms' at the SMS step;
        any other outcome raises its category."""
        status = self._document_status()
        if status is not None and status >= 500:
            raise unavailable(f"{page}: the sign-on answered HTTP {status} at {url_path(self.driver.current_url)}")
        refusals = self._sign_on_refusals()
        # The landing page, and with ``anywhere`` any portal page (off the realm's path), go before
        # the refusals, whose texts a portal page may also hold (부계정 관리 mentions 만료): a
        # renewal that returns to 부계정 관리 is not an expired sub-account.
        found = self._wait_for(page, {
            "home": LANDED,
            **({"page": ON_PORTAL} if anywhere else {}),
            **refusals,
            "sms": "sign_on.sms_code",
            "error": "sign_on.error",
            "again": "sign_on.form",  # after 'error': the page with the error message holds the form too
        }, sign_on=True)
        if found in refusals:
            raise self._refused(found)
        if found == "sms":
            return found
        if found == "error":
            shown = self._scrub(SignOnPage(self.driver, self.selectors).error_text())
            raise CollectionError("bad_credentials", f"{self.portal_name} rejected the sign-on: {shown!r}")
        if found == "page":
            found = "home"
        if found == "again":
            raise unavailable(f"{page}: the portal sent the browser back to the sign-on page right after "
                              "signing on")
        self._signed_on()
        log.info("signed on to %s", self.portal_name)
        return "home"
