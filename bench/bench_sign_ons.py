"""Sign-ons and browser-seconds per Rocket account per run, under the live sites' session rules.

The default sandbox defends itself as the live portals do (REAL-PORTALS.md §6): the portal's and
Keycloak's session cookies die with the browser, so every new browser process is signed out, and
the bot wall challenges a client whose sensor cookie it does not know yet. A Rocket run has three
browser tasks (sub-account expiry check, tax-invoice check, extract). Measured here, each task as
its browser part only (open, sign on if needed, the check's page or one page):

- **a browser per task**: each task opens its own browser in the account's profile and signs on;
- **the DAG's way**: the checks know the profile is signed out without a browser (sessions die with
  it) and defer; the extract opens one browser, signs on once and runs both checks before its pages;
- the same for a seller whose portal asks for an SMS code on a new device, after a person completed
  it once in the profile (``sign_in``): the profile's device trust keeps the SMS step away.

The sign-on challenge is scaled down to CHALLENGE s (the record: ~16 s); the 16 s figure is
extrapolated as measured + sign-ons x (16 - CHALLENGE), i.e. as if every sign-on met the whole
challenge (the sandbox challenges a profile once; whether the live wall re-challenges a known
profile is not public, so the extrapolation takes the worse case). Run: python bench/bench_sign_ons.py
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from common import Report

CHALLENGE = 2.0
REAL_CHALLENGE = 16.0
KEYSTROKE = 0.11  # a person's pace, as the collector types by default
TASKS = ("check_sub_account_expiry", "check_tax_invoice_block", "extract")
TODAY = dt.date(2026, 1, 7)
SCENARIO = {
    "today": TODAY.isoformat(),
    "bot_protection": {"challenge_seconds": CHALLENGE},
    "rocket": {"accounts": [
        {"account_id": "V00000901", "vendor_name": "벤치", "username": "bench_user", "password": "pw-bench-901",
         "sub_account_expires": "2026-12-31", "invoices": []},
        {"account_id": "V00000902", "vendor_name": "벤치", "username": "bench_sms", "password": "pw-bench-902",
         "sub_account_expires": "2026-12-31", "invoices": [], "sms_challenge": True}]},
}


def session_for(server, username: str, password: str, work: Path, profile):
    from coupang_sales.portal.browser import open_browser
    from coupang_sales.rocket.supplier_hub import SupplierHubSession

    session = SupplierHubSession(base_url=server.url, username=username, password=password, download_dir=work,
                                 driver_factory=lambda d: open_browser(d, profile_dir=profile.path))
    session.profile = profile
    return session


def browser_per_task(server, work: Path, profile) -> tuple[int, int, float]:
    sign_ons = sms = 0
    seconds = 0.0
    for task in TASKS:
        with session_for(server, "bench_user", "pw-bench-901", work / task, profile) as session:
            session.login()
            session.sub_accounts() if task != "check_tax_invoice_block" else session.settlement_blocked()
        sign_ons, sms, seconds = sign_ons + session.sign_ons, sms + session.sms_steps, seconds + session.browser_seconds
    return sign_ons, sms, seconds


def the_dags_way(server, work: Path, profile, username: str = "bench_user",
                 password: str = "pw-bench-901") -> tuple[int, int, float]:
    """The checks defer without a browser; the extract signs on once and runs them first."""
    with session_for(server, username, password, work / "extract", profile) as session:
        session.login()
        session.sub_accounts()  # check_sub_account_expiry, deferred
        session.settlement_blocked()  # check_tax_invoice_block, deferred
        session.list_invoices(TODAY - dt.timedelta(days=14), TODAY)  # the extract's first page
    return session.sign_ons, session.sms_steps, session.browser_seconds


def main() -> None:
    import json

    from coupang_sales.portal.profiles import BrowserProfile
    from sandbox import SandboxServer, load_scenario

    os.environ["COUPANG_PORTAL_SETTINGS"] = json.dumps({"waits": {"keystroke": KEYSTROKE}})
    report = Report("sign_ons", settings={"challenge_seconds": CHALLENGE, "extrapolated_to": REAL_CHALLENGE,
                                          "keystroke_seconds": KEYSTROKE, "browser": "headed under Xvfb"})
    work = Path(tempfile.mkdtemp(prefix="bench-sign-ons-"))
    rows = []
    with SandboxServer(load_scenario(SCENARIO)) as server:
        naive = BrowserProfile("coupang_rocket", "V00000901", root=work / "naive")
        rows.append(("a browser per task, first run", browser_per_task(server, work / "n1", naive)))
        rows.append(("a browser per task, next run", browser_per_task(server, work / "n2", naive)))
        ours = BrowserProfile("coupang_rocket", "V00000901", root=work / "ours")
        rows.append(("the DAG's way, first run", the_dags_way(server, work / "o1", ours)))
        rows.append(("the DAG's way, next run", the_dags_way(server, work / "o2", ours)))
        server.state.advance_clock(13 * 3600)  # past Keycloak's ~12 h: changes nothing any more
        rows.append(("the DAG's way, a day later", the_dags_way(server, work / "o3", ours)))
        sms = BrowserProfile("coupang_rocket", "V00000902", root=work / "sms")
        with session_for(server, "bench_sms", "pw-bench-902", work / "sign-in", sms) as person:
            person.sign_in(lambda: "123456")
        rows.append(("SMS seller after a person's sign-in, next run",
                     the_dags_way(server, work / "s1", sms, "bench_sms", "pw-bench-902")))
    for name, (sign_ons, sms_steps, seconds) in rows:
        report.add(f"sign-ons per account per run, {name}", sign_ons, "sign-ons", note=f"SMS steps {sms_steps}")
        report.add(f"browser-seconds per account per run, {name}", round(seconds, 1), "s",
                   note=f"challenge {CHALLENGE:g} s")
        report.add(f"browser-seconds per account per run, {name}, at {REAL_CHALLENGE:g} s challenge",
                   round(seconds + sign_ons * (REAL_CHALLENGE - CHALLENGE), 1), "s", note="extrapolated")
    report.emit()


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"took {time.monotonic() - started:.0f} s")
