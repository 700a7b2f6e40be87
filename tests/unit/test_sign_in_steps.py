"""The sign-in DAG's cheap variants without a browser or a scheduler: a refused code asked again, a
Required Action that skips itself, no answer in time, the status page's action refused (403), the
alert's link, and the status page's "signed in by" cell."""

from __future__ import annotations

import datetime as dt

import pytest

from coupang_sales.errors import CollectionError


class FakeTi:
    """The XCom and task-state calls of a task instance, in memory."""

    dag_id, run_id = "coupang_rocket_sign_in", "manual__1"

    def __init__(self, xcoms=None, states=None):
        self.xcoms = dict(xcoms or {})  # (task_id, key) -> value
        self.states = dict(states or {})
        self.pushed: list[tuple[str, object]] = []

    def xcom_push(self, key, value):
        self.pushed.append((key, value))
        self.xcoms[("sign_in", key)] = value

    def xcom_pull(self, task_ids, key="return_value"):
        return self.xcoms.get((task_ids, key))

    def get_task_states(self, dag_id, task_ids, run_ids):
        return {self.run_id: {t: self.states[t] for t in task_ids if t in self.states}}


class FakeDriver:
    def __init__(self, pages):
        self.pages = pages  # the SMS page's text per ask, with whether it shows an error

    def execute_script(self, script):
        return self.pages[0][0]

    def find_elements(self, *locator):
        return ["error"] if self.pages[0][1] else []


class FakeSession:
    """Asks for codes as ``PortalSession.sign_in`` does: again while the portal refuses them."""

    portal_name = "Coupang Supplier Hub"
    selectors = {"sign_on.error": ("css selector", ".alert-error")}

    def __init__(self, pages, right):
        self.driver = FakeDriver(pages)
        self.right, self.sms_steps, self.submitted = right, 0, []
        self.usage = {"sign_ons": 1}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def sign_in(self, ask, attempts):
        self.sms_steps = 1
        for _ in range(attempts):
            code = ask()
            self.submitted.append(code)
            if code == self.right:
                return True
            self.driver.pages.pop(0)
        raise CollectionError("auth_challenge", f"refused the SMS code {attempts} times")


class FakeHook:
    def __init__(self, session):
        self._session = session

    def session(self, **kwargs):
        return self._session


PAGE = "휴대폰 인증 등록된 휴대폰 번호(010-****-1234)로 인증번호를 발송했습니다. 3분 안에 입력해 주세요."


@pytest.fixture
def masked(monkeypatch):
    import airflow.sdk.log

    found: list[str] = []
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", lambda secret, name=None: found.append(secret))
    return found


def answer(code, user="admin"):
    return {"chosen_options": ["Submit code"], "params_input": {"code": code},
            "responded_by_user": {"id": user, "name": user}, "responded_at": "2026-01-08T00:00:00+00:00"}


def test_a_refused_code_is_asked_again_with_what_the_page_says(tmp_path, masked):
    from coupang_sales.airflow_glue.sign_in_dag import CodeFromRequiredAction
    from coupang_sales.portal.assisted import assisted_sign_in

    session = FakeSession([(PAGE, False), (PAGE + " 인증번호가 올바르지 않습니다.", True)], right="246810")
    ti = FakeTi({("ask_code_1", "return_value"): answer("111111"), ("ask_code_2", "return_value"): answer("246810")})
    answers: list[dict] = []
    outcome = assisted_sign_in(FakeHook(session), {"channel": "coupang_rocket", "account_id": "V1"},
                               CodeFromRequiredAction(ti, 0.01, answers), attempts=3, work_dir=tmp_path)
    assert outcome.signed_on and outcome.codes_asked == 2 and outcome.sms_steps == 1
    assert session.submitted == ["111111", "246810"]
    steps = dict(ti.pushed)
    assert set(steps) == {"sms_step_1", "sms_step_2"}
    assert steps["sms_step_1"] == {"attempt": 1, "attempts": 3, "sent_to": "010-****-1234", "valid_minutes": 3,
                                   "refused": False, "portal": "Coupang Supplier Hub", "seller": None}
    assert steps["sms_step_2"]["refused"] is True and steps["sms_step_2"]["attempt"] == 2
    assert "246810" not in repr(ti.pushed) and "111111" not in repr(ti.pushed), "no code in the steps' XComs"
    assert masked == ["111111", "246810"], "each code masked as soon as it is read"
    assert [a["by"] for a in answers] == ["admin", "admin"]


def test_no_answer_within_the_wait_is_auth_challenge_naming_the_wait(masked, monkeypatch):
    from coupang_sales.airflow_glue import sign_in_dag
    from coupang_sales.airflow_glue.sign_in_dag import CodeFromRequiredAction
    from coupang_sales.portal.assisted import SmsStep

    step = SmsStep(attempt=1, attempts=3, sent_to="x", valid_minutes=3, refused=False, portal="p")
    monkeypatch.setattr(sign_in_dag, "ANSWER_GRACE_SECONDS", 0.0)
    with pytest.raises(CollectionError) as caught:
        CodeFromRequiredAction(FakeTi(), 0.0005, [])(step)  # 30 ms
    assert caught.value.category == "auth_challenge"
    assert "no SMS code was given within 0.0005 minute(s)" in str(caught.value)
    # the Required Action already timed out (failed): no need to wait longer
    with pytest.raises(CollectionError):
        CodeFromRequiredAction(FakeTi(states={"ask_code_1": "failed"}), 60, [])(step)


def test_a_required_action_skips_itself_when_the_sign_in_did_not_need_it():
    from airflow.sdk.exceptions import AirflowSkipException

    from coupang_sales.airflow_glue.sign_in_dag import build_sign_in_dag
    from coupang_sales.rocket.channel import ROCKET

    ask = build_sign_in_dag(ROCKET).get_task("ask_code_1")
    context = {"ti": FakeTi(states={"sign_in": "success"}), "params": {"account": "V1"}}
    with pytest.raises(AirflowSkipException, match="without asking for a first SMS code"):
        ask.execute(context)


def test_the_form_says_which_seller_portal_phone_and_validity():
    from coupang_sales.airflow_glue.sign_in_dag import build_sign_in_dag
    from coupang_sales.jet.channel import JET

    ask = build_sign_in_dag(JET).get_task("ask_code_2")
    subject, body = ask.describe({"account": "A00012345"}, {
        "attempt": 2, "attempts": 3, "sent_to": "010-****-1234", "valid_minutes": 3, "refused": True,
        "portal": "Coupang Wing", "seller": "주식회사 예시"})
    assert "주식회사 예시 (A00012345)" in subject and "Wing" in subject
    assert "010-****-1234" in body and "3 minutes" in body and "refused" in body and "2 of 3" in body


class Denying:
    def __init__(self, allowed):
        self.allowed = allowed
        self.asked: list[tuple] = []

    def is_authorized_dag(self, *, method, access_entity, details, user):
        self.asked.append((method, access_entity.name, details.id))
        return self.allowed


@pytest.fixture
def auth(monkeypatch):
    import airflow.api_fastapi.app

    manager = Denying(False)
    monkeypatch.setattr(airflow.api_fastapi.app, "get_auth_manager", lambda: manager)
    return manager


def test_a_user_who_may_not_trigger_the_dag_gets_403_and_no_link(auth):
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    from coupang_sales.airflow_glue.sign_in_action import status_app
    from coupang_sales.airflow_glue.sign_in_links import add_sign_in_links

    app = status_app()

    app.dependency_overrides[get_user] = lambda: object()
    try:
        client = TestClient(app)
        form = {"channel": "coupang_rocket", "account": "V1"}
        assert client.post("/sign-in", data=form, follow_redirects=False).status_code == 403
        refused = client.get("/sign-in", params=form, follow_redirects=False)
        assert refused.status_code == 403 and "may not start" in refused.text
    finally:
        app.dependency_overrides.clear()
    assert auth.asked[0] == ("POST", "RUN", "coupang_rocket_sign_in")
    rows = [{"channel": "coupang_rocket", "account_id": "V1", "state": "blocked", "last_reason": "auth_challenge"}]
    add_sign_in_links(rows, object())
    assert "sign_in_url" not in rows[0]
    auth.allowed = True
    add_sign_in_links(rows, object())
    assert rows[0]["sign_in_url"] == "sign-in?channel=coupang_rocket&account=V1"


def test_the_auth_challenge_alert_links_to_the_sign_in():
    from coupang_sales.airflow_glue.alerts import Alert

    context = {"coupang_account": {"channel": "coupang_rocket", "account_id": "V1"},
               "exception": CollectionError("auth_challenge", "SMS verification (인증번호) asked"), "run_id": "r"}
    alert = Alert.of(context)
    assert alert.sign_in_url.endswith("/coupang-collections/sign-in?channel=coupang_rocket&account=V1")
    assert alert.sign_in_url.startswith("http")
    assert "Sign in:  http" in alert.body
    other = Alert.of({**context, "exception": CollectionError("bad_credentials", "refused")})
    assert other.sign_in_url is None and "Sign in:" not in other.body


def test_the_row_shows_the_action_and_who_signed_in():
    from test_status_page_render import row

    from coupang_sales.airflow_glue.status_page import _row, render

    shown = row(state="blocked", last_reason="auth_challenge", sign_in_url="sign-in?channel=c&account=<b>",
                signed_in_by="<admin>", signed_in_at=dt.datetime(2026, 1, 7, 1, 2, tzinfo=dt.UTC))
    assert _row(shown, "/")["signed_in_at"] == "2026-01-07 10:02 KST"
    html = render({"rows": [shown], "total": 1, "page": 1, "page_size": 50, "today": dt.date(2026, 1, 7),
                   "counts": {"blocked": 1}, "channels": ("coupang_rocket",)},
                  {"channel": "", "state": "", "q": "", "sort": "state", "desc": "", "size": ""}, ui_root="/")
    assert '<a class="sign-in" href="sign-in?channel=c&amp;account=&lt;b&gt;">Sign in</a>' in html
    assert "signed in by &lt;admin&gt; at 2026-01-07 10:02 KST" in html
