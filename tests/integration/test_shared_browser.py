"""A browser session that outlives the task that opened it (``portal.webdriver_server``).

The live portals' sessions die with the browser, so an account's run keeps one browser: the first task
opens a session on a WebDriver server that is not its child, and a later task, in another process,
attaches to it and is still signed on. Real chromedriver and headed Chromium (its own Xvfb), the sandbox
over HTTP with its defences on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coupang_sales.portal.browser import session_options
from coupang_sales.portal.webdriver_server import LocalWebDriverServer, close_session, new_session, session_alive
from sandbox import SandboxServer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-Shared-5n3q"
SCENARIO = {"today": "2026-02-05", "bot_protection": {"challenge_seconds": 0.2},
            "rocket": {"accounts": [{"account_id": "V00000951", "vendor_name": "거래처 공유", "username": "shared_1",
                                     "password": PASSWORD, "sub_account_expires": "2026-06-30", "invoices": []}]},
            "jet": {"accounts": []}}

# The second task: another Python process attaches to the session and asks the portal a question.
LATER_TASK = """
import json, sys
from coupang_sales.portal.webdriver_server import attach
from coupang_sales.rocket.supplier_hub import SupplierHubSession
given = json.loads(sys.stdin.read())
driver = attach(given["url"], given["session"])
with SupplierHubSession(base_url=given["portal"], username="shared_1", password=given["password"],
                        download_dir=given["dl"], timeout=15, driver_factory=lambda _d: driver) as hub:
    print(json.dumps({"blocked": hub.settlement_blocked()}))
"""


@pytest.fixture
def server(tmp_path):
    server = LocalWebDriverServer(tmp_path / "webdriver")
    yield server
    server.stop()


def test_a_later_task_in_another_process_attaches_to_the_session_still_signed_on(server, tmp_path):
    from coupang_sales.rocket.supplier_hub import SupplierHubSession

    with SandboxServer(SCENARIO) as portal:
        url = server.url()
        first = new_session(url, session_options(tmp_path / "dl", profile_dir=tmp_path / "profile"),
                            download_dir=tmp_path / "dl")
        session_id = first.session_id
        first.quit = lambda: first.command_executor.close()  # the first task ends; its browser must not
        with SupplierHubSession(base_url=portal.url, username="shared_1", password=PASSWORD,
                                download_dir=tmp_path / "dl", timeout=15, driver_factory=lambda _d: first) as hub:
            hub.login()
        assert portal.state.sign_ons_of("shared_1") == 1 and session_alive(url, session_id)

        given = {"url": url, "session": session_id, "portal": portal.url, "password": PASSWORD,
                 "dl": str(tmp_path / "dl2")}
        later = subprocess.run([sys.executable, "-c", LATER_TASK], input=json.dumps(given), capture_output=True,
                               text=True, timeout=120, cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"),
                                                                                 str(ROOT / "include")])})
        assert later.returncode == 0, later.stderr[-2000:]
        assert json.loads(later.stdout.strip().splitlines()[-1]) == {"blocked": False}
        print(f"sign-ons after two tasks in two processes: {portal.state.sign_ons_of('shared_1')}")
        assert portal.state.sign_ons_of("shared_1") == 1, "the later task had to sign on again"

        assert close_session(url, session_id) and not session_alive(url, session_id)
        assert server.url() == url, "the server stays for the next session"
