"""A person-assisted sign-on, shared by the terminal command and the sign-in DAG.

``assisted_sign_in(hook, account, ask_code)`` opens the account's persistent browser profile,
submits the password and, at the portal's SMS step (인증번호), calls ``ask_code(step)`` for the
code: ``step`` (an ``SmsStep``) says which attempt this is, where the page says the code was
sent and how long the page says it stays valid, and whether the previous code was refused.
A refused code is asked again, up to ``attempts`` times (``PortalSession.sign_in``). The
browser is closed at the end: the profile keeps what the portal lets it keep (the device
trust that spares later sign-ons the SMS step), not the session (REAL-PORTALS.md §6).

Importing it imports no browser library (the DAG files read its settings). The code never goes
into a message or a log line here; whoever calls ``ask_code`` decides
how the person is asked (the terminal's prompt, an Airflow Required Action).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# What the SMS page says, read as text: a masked phone number (010-****-1234, 010-12**-**34 ...)
# and a validity ('3분 안에', '5 minutes').
_PHONE = re.compile(r"(?<!\d)(01\d[-. ]?[\d*]{3,4}[-. ]?[\d*]{4})(?!\d)")
_MINUTES = re.compile(r"(\d{1,2})\s*(?:분|minutes?|mins?)")
_SENT_TO_DEFAULT = "the seller's registered mobile phone (등록된 휴대폰 번호)"
_PAGE_TEXT_JS = "return document.body ? document.body.innerText : '';"


DEFAULT_CODE_ATTEMPTS = 3
DEFAULT_CODE_WAIT_MINUTES = 5.0


def code_attempts() -> int:
    """``COUPANG_SIGN_IN_CODE_ATTEMPTS`` (default 3): how many SMS codes one sign-on asks for before it
    gives up (a refused code is asked again)."""
    raw = os.environ.get("COUPANG_SIGN_IN_CODE_ATTEMPTS", "").strip()
    return max(1, int(raw)) if raw else DEFAULT_CODE_ATTEMPTS


def code_wait_minutes() -> float:
    """``COUPANG_SIGN_IN_CODE_WAIT_MINUTES`` (default 5): how long the sign-in DAG waits for a person to
    answer one SMS code's Required Action (the browser stays open meanwhile)."""
    raw = os.environ.get("COUPANG_SIGN_IN_CODE_WAIT_MINUTES", "").strip()
    return max(0.05, float(raw)) if raw else DEFAULT_CODE_WAIT_MINUTES


@dataclass(frozen=True)
class SmsStep:
    """One ask for the SMS code: attempt ``attempt`` of ``attempts``."""

    attempt: int
    attempts: int
    sent_to: str            # as the page says it, or the registered phone in general
    valid_minutes: int | None  # as the page says it; None when it does not
    refused: bool           # the page shows that the previous code was refused
    portal: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SignInOutcome:
    signed_on: bool  # False: the profile was still signed on, nothing was asked
    sms_steps: int   # SMS steps met (0 or 1)
    codes_asked: int
    usage: Mapping[str, Any]


def read_sms_step(session: Any, attempt: int, attempts: int) -> SmsStep:
    """What the SMS page shows (no secret is on it): where the code went, how long it is valid, a refusal."""
    from selenium.common.exceptions import WebDriverException

    text = ""
    refused = False
    try:
        text = str(session.driver.execute_script(_PAGE_TEXT_JS) or "")
        refused = bool(session.driver.find_elements(*session.selectors["sign_on.error"]))
    except WebDriverException:
        pass
    phone = _PHONE.search(text)
    minutes = _MINUTES.search(text)
    return SmsStep(attempt=attempt, attempts=attempts, sent_to=phone.group(1) if phone else _SENT_TO_DEFAULT,
                   valid_minutes=int(minutes.group(1)) if minutes else None, refused=refused and attempt > 1,
                   portal=session.portal_name)


def assisted_sign_in(hook: Any, account: Mapping[str, Any], ask_code: Callable[[SmsStep], str], *,
                     attempts: int, work_dir: Path) -> SignInOutcome:
    """Sign the account's profile on, asking ``ask_code`` for each SMS code; raises CollectionError
    (``auth_challenge`` when the codes ran out or ``ask_code`` raised it, or the sign-on's own categories).

    ``hook`` is the account's ``PortalHook``; failure artifacts (credentials and the code emptied
    from the page first) go to ``work_dir / 'artifacts'``."""
    asked = 0
    session = hook.session(download_dir=work_dir / "downloads", artifacts_dir=work_dir / "artifacts",
                           account=dict(account))

    def ask() -> str:
        nonlocal asked
        asked += 1
        return ask_code(read_sms_step(session, asked, attempts))

    try:
        with session:
            signed_on = session.sign_in(ask, attempts=attempts)
    finally:
        shutil.rmtree(work_dir / "downloads", ignore_errors=True)
    return SignInOutcome(signed_on=signed_on, sms_steps=session.sms_steps, codes_asked=asked,
                         usage=session.usage)
