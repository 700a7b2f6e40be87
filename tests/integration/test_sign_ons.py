"""Sign-ons are the scarce resource: one per account per run, since the live portals' sessions die with the
browser (REAL-PORTALS.md §6: a new browser process is signed out), and a person-assisted first sign-on through
the SMS step, whose device trust the profile keeps. Sandbox over HTTP (its defences on), headed Chromium under
a virtual display, PostgreSQL, Airflow dag.test(); the sandbox counts every password it accepts."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import local_stack

pytestmark = pytest.mark.integration
D = dt.date.fromisoformat
ROOT = Path(__file__).resolve().parents[2]
TWELVE_HOURS_AND_MORE = 13 * 3600  # past Keycloak's session (sessions.sso_seconds, 12 h by default)


def rocket_account(account_id: str, username: str, invoice_no: str, *, sms: bool = False) -> dict:
    return {"account_id": account_id, "vendor_name": "주식회사 예시상사", "username": username,
            "password": f"pw-{username}", "sub_account_expires": "2026-12-31", "sms_challenge": sms,
            "sms_code": "246810",
            "invoices": [{"invoice_no": invoice_no, "written_date": "2026-01-05", "tax_invoice_confirmed": "2026-01-06",
                          "lines": [{"kind": "발주", "po_no": f"1{invoice_no}", "sku_id": "55501", "sku_name": "보리차",
                                     "moved_date": "2026-01-04", "center": "이천1", "qty": 2, "unit_price": 11_000,
                                     "unit_supply": 10_000, "unit_tax": 1_000}]}]}


SCENARIO = {
    "today": "2026-01-07",
    # a short challenge in front of every sign-on form, as Akamai's (~16 s on the real site)
    "bot_protection": {"challenge_seconds": 1},
    "rocket": {"accounts": [rocket_account("V00000701", "so_plain", "37000001"),
                            rocket_account("V00000702", "so_sms", "37000002", sms=True)]},
    "jet": {"accounts": [{"account_id": "A00000701", "username": "so_wing", "password": "pw-so_wing", "version": 1,
                          "v1_sales": [{"date": "2026-01-05", "option_id": "87001", "product_name": "보리차",
                                        "option_name": "1L", "qty": 1, "amount": 9_900}]}]},
}


@pytest.fixture(scope="module")
def portal():
    from sandbox import SandboxServer, load_scenario

    with SandboxServer(load_scenario(SCENARIO)) as server:
        yield server


@pytest.fixture
def profiles(tmp_path, monkeypatch):
    root = tmp_path / "profiles"
    monkeypatch.setenv("COUPANG_PROFILE_DIR", str(root))
    return root


def run(dag):
    """One run of ``dag`` for 6 Jan (``only`` chooses the one active account)."""
    return dag.test(logical_date=local_stack.logical_date_for(D("2026-01-06")))


def last_attempt(conn, run_id: str, account_id: str) -> tuple:
    return conn.execute("SELECT status, reason, message, details FROM sales.collection_runs WHERE run_id = %s "
                        "AND account_id = %s ORDER BY id DESC LIMIT 1", (run_id, account_id)).fetchone()


def collection_report(run_id: str) -> dict:
    import json

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalar(select(XComModel.value).where(
            XComModel.run_id == run_id, XComModel.task_id == "report", XComModel.key == "collection_report"))
    return json.loads(value) if isinstance(value, str) else value


def only(conn, channel: str, account_id: str) -> None:
    conn.execute("UPDATE sales.accounts SET active = (account_id = %s) WHERE channel = %s", (account_id, channel))


def test_a_rocket_account_signs_on_once_per_run_however_many_browser_tasks(
        collection_dag, warehouse, portal, profiles):
    dag = collection_dag(portal, SCENARIO, "coupang_rocket_sales")
    only(warehouse, "coupang_rocket", "V00000701")
    state = portal.state
    before = state.sign_ons_of("so_plain")

    first = run(dag)
    status, _, _, details = last_attempt(warehouse, first.run_id, "V00000701")
    # three browser tasks (expiry check, tax-invoice check, extract), one password
    assert status == "success" and state.sign_ons_of("so_plain") - before == 1
    assert details["sign_ons"] == 1 and details["browser_seconds"] > 0
    report = {row["account_id"]: row for row in collection_report(first.run_id)["accounts"]}
    assert report["V00000701"]["sign_ons"] == 1, "the run report shows sign-ons per account"
    tasks = {ti.task_id for ti in first.get_task_instances()}
    assert {"collect.check_sub_account_expiry", "collect.check_tax_invoice_block", "collect.extract"} <= tasks

    # The next run's browser is a new process: signed out, whatever the server-side sessions' age.
    second = run(dag)
    status, _, _, details = last_attempt(warehouse, second.run_id, "V00000701")
    assert status == "success" and details["sign_ons"] == 1, "a new browser process signs on again, once"
    assert state.sign_ons_of("so_plain") - before == 2

    # the profile: the account's own, readable by its owner only, no password inside
    profile = profiles / "coupang_rocket" / "V00000701"
    assert stat.S_IMODE(profile.stat().st_mode) == 0o700
    password = b"pw-so_plain"
    assert not any(password in p.read_bytes() for p in profile.rglob("*") if p.is_file() and not p.is_symlink())


def test_a_jet_account_signs_on_once_per_run(collection_dag, warehouse, portal, profiles):
    dag = collection_dag(portal, SCENARIO, "coupang_jet_sales")
    state = portal.state
    before = state.sign_ons_of("so_wing")
    first = run(dag)
    assert last_attempt(warehouse, first.run_id, "A00000701")[3]["sign_ons"] == 1
    assert state.sign_ons_of("so_wing") - before == 1


def test_a_new_profile_meets_the_sms_step_which_the_sign_in_command_completes(collection_dag, warehouse, portal,
                                                                             profiles, smtp):
    dag = collection_dag(portal, SCENARIO, "coupang_rocket_sales")
    only(warehouse, "coupang_rocket", "V00000702")
    state = portal.state

    blocked = run(dag)
    status, reason, message, _ = last_attempt(warehouse, blocked.run_id, "V00000702")
    assert (status, reason) == ("blocked", "auth_challenge")
    assert "python -m coupang_sales.sign_in coupang_rocket V00000702" in message
    assert state.sign_ons[-1].username == "so_sms" and state.sign_ons[-1].sms_asked
    command = "python -m coupang_sales.sign_in coupang_rocket V00000702"
    alerts = smtp.bodies()
    assert alerts and all(command in body for body in alerts), "the alert names the command for the account"
    assert all("/coupang-collections/sign-in?channel=coupang_rocket&amp;account=V00000702" in body
               or "/coupang-collections/sign-in?channel=coupang_rocket&account=V00000702" in body for body in alerts), \
        "and links to the status page's Sign in action"

    # a person runs the command and types the code; a wrong one is asked again
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT / 'include'}"}
    done = subprocess.run([sys.executable, "-m", "coupang_sales.sign_in", "coupang_rocket", "V00000702"],
                          input="111111\n246810\n", env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SMS code:") == 2
    assert "Signed on after the SMS step" in done.stdout
    assert "pw-so_sms" not in done.stdout + done.stderr

    # the next run's browser is signed out (its sessions died with the command's browser) and signs on with
    # the password once; the profile's device trust (a persistent cookie) spares it the SMS step
    signed_on = state.sign_ons_of("so_sms")
    after = run(dag)
    status, _, _, details = last_attempt(warehouse, after.run_id, "V00000702")
    assert status == "success" and details["sign_ons"] == 1 and details["sms_steps"] == 0
    assert state.sign_ons_of("so_sms") == signed_on + 1
    assert state.sign_ons[-1].username == "so_sms" and not state.sign_ons[-1].sms_asked


def test_two_accounts_never_share_a_profile(collection_dag, warehouse, portal, profiles):
    dag = collection_dag(portal, SCENARIO, "coupang_rocket_sales")
    only(warehouse, "coupang_rocket", "V00000701")
    warehouse.execute("UPDATE sales.accounts SET active = true WHERE account_id IN ('V00000701', 'V00000702')")
    run(dag)
    folders = sorted(p.name for p in (profiles / "coupang_rocket").iterdir() if p.is_dir())
    assert folders == ["V00000701", "V00000702"]
    one, two = (profiles / "coupang_rocket" / name for name in folders)
    assert b"pw-so_sms" not in b"".join(p.read_bytes() for p in one.rglob("*") if p.is_file())
    assert b"pw-so_plain" not in b"".join(p.read_bytes() for p in two.rglob("*") if p.is_file())


def callbacks_of(state) -> int:
    return sum(1 for r in state.requests if r.target.startswith("/login/oauth2/code/keycloak"))


def test_a_long_session_is_renewed_in_its_profile_without_the_password_while_keycloak_lives(portal, tmp_path):
    """The portal session expires (~1 h) mid-run: renewed through Keycloak's session, no password; once
    Keycloak's (~12 h) is gone too, the password again, in the same profile (no SMS step for it)."""
    from coupang_sales.portal.browser import open_browser
    from coupang_sales.portal.profiles import BrowserProfile
    from coupang_sales.rocket.supplier_hub import SupplierHubSession

    profile = BrowserProfile("coupang_rocket", "V00000701", root=tmp_path / "profiles")
    session = SupplierHubSession(base_url=portal.url, username="so_plain", password="pw-so_plain",
                                 download_dir=tmp_path / "downloads",
                                 driver_factory=lambda d: open_browser(d, profile_dir=profile.path))
    session.profile = profile
    state = portal.state
    before = state.sign_ons_of("so_plain")
    with session:
        session.login()
        assert session.sign_ons == 1 and profile.held
        callbacks = callbacks_of(state)
        state.advance_clock(3700)  # past the portal's session, inside Keycloak's
        # the browser follows the chain through Keycloak's session back to the page: a new portal
        # session, no form, no password
        assert "so_plain" in [sub.username for sub in session.sub_accounts()]
        assert session.sign_ons == 1 and callbacks_of(state) == callbacks + 1
        state.advance_clock(TWELVE_HOURS_AND_MORE)  # Keycloak's session is gone too: the form, the password
        assert "so_plain" in [sub.username for sub in session.sub_accounts()]
        assert (session.sign_ons, session.renewals) == (2, 1) and callbacks_of(state) == callbacks + 2
    assert not profile.held, "the lock goes with the browser"
    assert state.sign_ons_of("so_plain") - before == 2
