"""Sign-ons and browser-seconds per Rocket account per run: throw-away profiles (before) vs the account's
persistent profile (after).

A Rocket run opens three browsers (sub-account expiry check, tax-invoice check, extract).
Before, each started in a fresh profile and signed on; after, they share the account's profile,
so the first signs on and the others find it signed on, and the next run (session still valid)
signs on zero times. Each task here is its browser part only: open, sign on if needed, one page
(the extract's data work is the same either way and is measured by bench_extraction.py).

The sign-on challenge is scaled down to CHALLENGE s (the real one takes ~16 s); the 16 s figure
is extrapolated as measured + sign-ons x (16 - CHALLENGE). Run: python bench/bench_sign_ons.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import Report

CHALLENGE = 2.0
REAL_CHALLENGE = 16.0
TASKS = ("check_sub_account_expiry", "check_tax_invoice_block", "extract")
SCENARIO = {
    "today": "2026-01-07",
    "bot_protection": {"challenge_seconds": CHALLENGE},
    "rocket": {"accounts": [{"account_id": "V00000901", "vendor_name": "벤치", "username": "bench_user",
                             "password": "pw-bench", "sub_account_expires": "2026-12-31", "invoices": []}]},
}


def one_run(server, work: Path, profile) -> tuple[int, float]:
    from coupang_sales.portal.browser import open_browser
    from coupang_sales.rocket.supplier_hub import SupplierHubSession

    sign_ons, seconds = 0, 0.0
    for task in TASKS:
        def factory(download_dir: Path):
            return open_browser(download_dir, profile_dir=profile.path if profile else None)

        session = SupplierHubSession(base_url=server.url, username="bench_user", password="pw-bench",
                                     download_dir=work / task, driver_factory=factory)
        session.profile = profile
        with session:
            session.login()
            session.sub_accounts()
        sign_ons += session.sign_ons
        seconds += session.browser_seconds
    return sign_ons, seconds


def main() -> None:
    from coupang_sales.portal.profiles import BrowserProfile
    from sandbox import SandboxServer, load_scenario

    report = Report("sign_ons", settings={"challenge_seconds": CHALLENGE, "extrapolated_to": REAL_CHALLENGE})
    work = Path(tempfile.mkdtemp(prefix="bench-sign-ons-"))
    with SandboxServer(load_scenario(SCENARIO)) as server:
        before = one_run(server, work / "before", None)
        profile = BrowserProfile("coupang_rocket", "V00000901", root=work / "profiles")
        first = one_run(server, work / "first", profile)
        again = one_run(server, work / "again", profile)
        server.state.advance_clock(13 * 3600)
        expired = one_run(server, work / "expired", profile)
    for name, (sign_ons, seconds) in (("before (fresh profiles)", before), ("after, first run", first),
                                      ("after, session valid", again), ("after, session expired", expired)):
        report.add(f"sign-ons per account per run, {name}", sign_ons, "sign-ons")
        report.add(f"browser-seconds per account per run, {name}", round(seconds, 1), "s",
                   note=f"challenge {CHALLENGE:g} s")
        report.add(f"browser-seconds per account per run, {name}, at {REAL_CHALLENGE:g} s challenge",
                   round(seconds + sign_ons * (REAL_CHALLENGE - CHALLENGE), 1), "s", note="extrapolated")
    report.emit()


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"took {time.monotonic() - started:.0f} s")
