"""The sign-in DAGs: a person completes a seller's sign-on (the SMS step) from the Airflow UI.

One DAG per channel, ``coupang_rocket_sign_in`` and ``coupang_jet_sign_in`` (``build_sign_in_dag``),
triggered with ``{"channel", "account"}`` (the status page's "Sign in" action does it,
``sign_in_action``). Decisions (docs/decisions.md, "Sign-ins from the Airflow UI"):

- **One DAG per channel**, not one ``coupang_sign_in`` with a channel param: a task's pool is fixed
  when the DAG is parsed, and the browser task must hold its portal's pool
  (``coupang_supplier_hub`` / ``coupang_wing``: one signed-on seller per portal and egress
  address), as the collections' browser tasks do. ``channel`` is still a param (one value), so
  every sign-in is triggered with the same conf.
- **``sign_in``** (the portal's pool, the browser queue) opens the account's persistent profile,
  submits the password and, at the SMS step, publishes the XCom ``sms_step_<k>`` (attempt k of N,
  where the page says the code went, how long it says it is valid, whether the previous code was
  refused: never the code) and polls the answer of ``ask_code_<k>`` (its XCom, the HITL
  answer) for ``COUPANG_SIGN_IN_CODE_WAIT_MINUTES`` (default 5); the browser stays open meanwhile,
  since the live portals' sessions die with it (REAL-PORTALS.md §6). It is
  ``coupang_sales.portal.assisted.assisted_sign_in``, the terminal command's implementation, with
  the Required Action as the way of asking. Its ``execution_timeout`` covers N waits and the
  sign-on itself. No retries: a retry would send the seller another SMS.
- **``ask_code_1`` .. ``ask_code_N``** (``COUPANG_SIGN_IN_CODE_ATTEMPTS``, default 3) are
  ``HITLEntryOperator``s in a chain beside ``sign_in``: ``ask_code_k`` waits for ``sms_step_<k>``,
  then sets its subject and body (the seller: its connection's description if it has one, and
  the account id; the portal; where the code went; how long it is valid)
  and parks as a Required Action (in Airflow 3.3 a task awaiting input holds no worker and no pool
  slot) with one field, ``code``, and no default, so an unanswered form times out
  (``response_timeout`` = the wait) instead of answering itself. When ``sign_in`` ends without an
  SMS step ``k`` (no step at all, the first code was right, or it failed), ``ask_code_k`` skips
  itself, and the chain's later ones are skipped with it. The chain keeps one of them at a time
  polling on a worker.
- **The code** is masked (``mask_secret``) by both tasks as soon as they hold it; it reaches no
  log line, no XCom but the HITL answer itself, no screenshot (the artifacts empty the code's
  field first) and no alert (the sign-in DAGs send none: the person is already there).
- **No answer in time**: ``sign_in`` fails with ``[auth_challenge] no SMS code was given within N
  minute(s)``; the warehouse is not touched, so the account stays ``auth_challenge``. **Wrong
  code**: the portal says so, the session asks again (``ask_code_<k+1>``), up to N codes.
- **Success** is recorded in ``sales.sign_ins`` (migration 0005): who answered the last code (the HITL
  response's user) and when; the status page shows "signed in by X at T". The account's state
  changes with its next collection, which meets no SMS step where the portal trusts the device.
- **Unpaused at creation**: with no schedule the DAGs only run when someone triggers them, and a
  paused sign-in DAG would leave the status page's action queued with nobody noticing.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.hitl import HITLEntryOperator
from airflow.sdk import DAG, BaseOperator, Param

from coupang_sales.airflow_glue.sign_in_links import sign_in_dag_id, sign_in_link  # noqa: F401 (re-exported)
from coupang_sales.channel import Channel, Tag
from coupang_sales.jet.channel import JET
from coupang_sales.rocket.channel import ROCKET

log = logging.getLogger(__name__)


CHANNELS: dict[str, Channel] = {ROCKET.name: ROCKET, JET.name: JET}


def _portal(channel: str) -> str:
    """The portal's name for people: 'Coupang Supplier Hub (Coupang Rocket)'."""
    value = CHANNELS[channel]
    return f"{value.portal_title} ({value.name.removeprefix('coupang_').capitalize()})"


FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}
POLL_SECONDS = 1.0
ANSWER_GRACE_SECONDS = 60.0
ORDINALS = {1: "first", 2: "second", 3: "third"}


def _ordinal(k: int) -> str:
    return ORDINALS.get(k, f"{k}th")


def sign_in_timeout(attempts: int, wait_minutes: float) -> dt.timedelta:
    """The sign-in task's backstop: every wait for a code, plus the sign-on and a profile held by a
    collection (``profiles.DEFAULT_WAIT_SECONDS``, 10 minutes), plus margin."""
    return dt.timedelta(minutes=attempts * wait_minutes + 15)


def _task_state(ti, task_id: str) -> str | None:
    """The state of ``task_id`` in the task's own run (the execution API's task states)."""
    found = ti.get_task_states(dag_id=ti.dag_id, task_ids=[task_id], run_ids=[ti.run_id])
    states = found.get(ti.run_id, found) if isinstance(found, dict) else {}
    state = states.get(task_id) if isinstance(states, dict) else None
    return str(getattr(state, "value", state)) if state is not None else None


class SignInOperator(BaseOperator):
    """Opens the account's profile, signs on, and takes each SMS code from the ``ask_code_<k>`` tasks."""

    ui_color = "#c6f6d5"

    def __init__(self, *, channel: str, attempts: int, wait_minutes: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channel = channel
        self.attempts = attempts
        self.wait_minutes = wait_minutes

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from coupang_sales.airflow_glue.audit import CollectionFailed
        from coupang_sales.airflow_glue.hooks import portal_hook
        from coupang_sales.airflow_glue.warehouse_hook import warehouse_connection
        from coupang_sales.errors import CollectionError
        from coupang_sales.portal.assisted import assisted_sign_in
        from coupang_sales.warehouse.runs import account_conn_id
        from coupang_sales.warehouse.sign_ins import record_sign_in

        params = context["params"]
        account_id = str(params.get("account") or "").strip()
        if str(params.get("channel") or self.channel) != self.channel:
            raise AirflowFailException(f"[configuration_error] this DAG signs on {self.channel} accounts, "
                                       f"not {params.get('channel')}")
        conn = warehouse_connection()
        try:
            conn_id = account_conn_id(conn, channel=self.channel, account_id=account_id)
        finally:
            conn.close()
        if conn_id is None:
            raise AirflowFailException(f"[configuration_error] {self.channel} {account_id!r} is not in sales.accounts")
        hook = portal_hook(CHANNELS[self.channel], conn_id)
        account = {"channel": self.channel, "account_id": account_id, "conn_id": conn_id}
        answers: list[dict[str, Any]] = []
        ask = CodeFromRequiredAction(context["ti"], self.wait_minutes, answers, seller=_seller_name(hook))
        work = Path(tempfile.mkdtemp(prefix="coupang-sign-in-"))
        log.info("signing on %s %s in its browser profile; SMS codes come from the tasks ask_code_1..%d",
                 self.channel, account_id, self.attempts)
        try:
            outcome = assisted_sign_in(hook, account, ask, attempts=self.attempts, work_dir=work)
        except CollectionError as exc:
            raise CollectionFailed(exc) from None  # "[category] message Action: ...", its category kept
        last = answers[-1] if answers else {}
        completed_by = last.get("by") or _triggered_by(context)
        conn = warehouse_connection()
        try:
            record_sign_in(conn, channel=self.channel, account_id=account_id, completed_by=completed_by,
                           run_id=context.get("run_id"), sms_steps=outcome.sms_steps, codes_asked=outcome.codes_asked)
        finally:
            conn.close()
        if outcome.signed_on:
            log.info("%s %s signed on%s (completed by %s); the profile keeps the portal's device trust",
                     self.channel, account_id, " after the SMS step" if outcome.sms_steps else "", completed_by)
        else:
            log.info("the profile of %s %s was still signed on; nothing was asked", self.channel, account_id)
        return {"signed_on": outcome.signed_on, "sms_steps": outcome.sms_steps, "codes_asked": outcome.codes_asked,
                "completed_by": completed_by}


def _seller_name(hook) -> str | None:
    """The seller's name for the form, if the account's connection says it (its description)."""
    try:
        return (hook.get_connection(hook.portal_conn_id).description or "").strip() or None
    except Exception:  # the form goes out without it
        return None


def _triggered_by(context: Any) -> str | None:
    run = context.get("dag_run")
    return getattr(run, "triggering_user_name", None)


class CodeFromRequiredAction:
    """``ask_code`` of ``assisted_sign_in`` inside the sign-in task: publish the step, wait for its answer."""

    def __init__(self, ti, wait_minutes: float, answers: list[dict[str, Any]], *, seller: str | None = None):
        self.ti = ti
        self.wait_minutes = wait_minutes
        self.answers = answers
        self.seller = seller

    def __call__(self, step) -> str:
        from airflow.sdk.log import mask_secret

        from coupang_sales.errors import CollectionError

        k = step.attempt
        self.ti.xcom_push(key=f"sms_step_{k}", value={**step.as_dict(), "seller": self.seller})
        log.info("SMS step: code %d of %d asked through the Required Action of ask_code_%d (sent to %s%s)",
                 k, step.attempts, k, step.sent_to,
                 f", valid {step.valid_minutes} minutes" if step.valid_minutes else "")
        # The form times out after the wait (the scheduler's sweep fails it, which ends this wait too);
        # the grace covers the gap between this step's publishing and the form's parking, so an
        # answer the form accepted is never lost.
        deadline = time.monotonic() + self.wait_minutes * 60 + ANSWER_GRACE_SECONDS
        while True:
            over = time.monotonic() >= deadline or _task_state(self.ti, f"ask_code_{k}") in FINISHED
            # pulled after the state was read: an answer that came with the task's end is not missed
            answer = self.ti.xcom_pull(task_ids=f"ask_code_{k}")
            if answer:
                break
            if over:
                raise CollectionError(
                    "auth_challenge", f"no SMS code was given within {self.wait_minutes:g} minute(s) "
                                      f"(Required Action of ask_code_{k}); the seller is not signed on",
                    action="Start the sign-in again when the seller can read out the code.")
            time.sleep(POLL_SECONDS)
        code = str(((answer.get("params_input") or {}).get("code")) or "").strip()
        if code:
            mask_secret(code)
        by = (answer.get("responded_by_user") or {}).get("name")
        self.answers.append({"by": by, "at": answer.get("responded_at")})
        log.info("code %d answered by %s; submitting it", k, by)
        return code


def code_params() -> dict[str, Param]:
    """The Required Action's one field: the code, no default (an unanswered form times out)."""
    return {"code": Param("", type="string", title="SMS code (인증번호)",
                          description="The code the seller received by SMS, as the portal sent it.")}


class SmsCodeOperator(HITLEntryOperator):
    """The Required Action for SMS code ``attempt``: waits for ``sign_in`` to reach that step, says which
    seller, portal, phone and validity, then waits for a person's answer (or skips when not needed).

    Give it ``params=code_params()`` where it is made: Airflow merges a task's params with the DAG's
    before the constructor runs, and the HITL form keeps the task's own."""

    def __init__(self, *, channel: str, attempt: int, attempts: int, wait_minutes: float, **kwargs: Any) -> None:
        super().__init__(
            subject=f"SMS code {attempt} for a {_portal(channel)} sign-on", options=["Submit code"],
            response_timeout=dt.timedelta(minutes=wait_minutes), **kwargs)
        self.channel = channel
        self.attempt = attempt
        self.attempts = attempts
        self.wait_minutes = wait_minutes

    def execute(self, context: Any):
        from airflow.sdk.exceptions import AirflowSkipException

        ti = context["ti"]
        k = self.attempt
        while True:
            state = _task_state(ti, "sign_in")
            step = ti.xcom_pull(task_ids="sign_in", key=f"sms_step_{k}")  # after the state: see above
            if step:
                break
            if state in FINISHED:
                raise AirflowSkipException(f"sign_in ended ({state}) without asking for a {_ordinal(k)} SMS code")
            time.sleep(POLL_SECONDS)
        self.subject, self.body = self.describe(context["params"], step)
        return super().execute(context=context)

    def describe(self, params: Any, step: dict[str, Any]) -> tuple[str, str]:
        """Subject and body (Markdown) of the Required Action for ``step`` (the ``sms_step_<k>`` XCom)."""
        account = str(params.get("account") or "")
        portal = step.get("portal") or _portal(self.channel)
        valid = (f"It is valid for **{step['valid_minutes']} minutes** from when it was sent."
                 if step.get("valid_minutes") else "It is valid for a few minutes only.")
        again = "**The previous code was refused by the portal.** " if step.get("refused") else ""
        seller = f"{step['seller']} ({account})" if step.get("seller") else account
        subject = f"SMS code for {self.channel} {seller} ({_portal(self.channel)})"
        body = "\n\n".join([
            f"{again}The portal ({portal}) sent an SMS code (인증번호) to **{step.get('sent_to')}** "
            f"for the seller's account **{seller}** ({self.channel}). {valid}",
            f"Code {step.get('attempt')} of {step.get('attempts')}. Enter it below as the seller reads it out; "
            f"this form waits {self.wait_minutes:g} minute(s), and the browser holding the sign-on waits "
            "with it.",
        ])
        return subject, body

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from airflow.sdk.log import mask_secret

        code = str(((event or {}).get("params_input") or {}).get("code") or "").strip()
        if code:
            mask_secret(code)
        return super().execute_complete(context, event)


def build_sign_in_dag(value: Channel, *, doc_md: str | None = None) -> DAG:
    """The sign-in DAG of the channel ``value`` (``ROCKET`` or ``JET``): ``sign_in`` and ``ask_code_1..N``."""
    from coupang_sales.airflow_glue.dag_factory import browser_queue, pool_name
    from coupang_sales.portal.assisted import code_attempts, code_wait_minutes

    channel = value.name
    if CHANNELS.get(channel) != value:
        raise ValueError(f"unknown channel {channel!r}")
    attempts, wait = code_attempts(), code_wait_minutes()
    with DAG(
        dag_id=sign_in_dag_id(channel),
        schedule=None,
        start_date=dt.datetime(2014, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        is_paused_upon_creation=False,
        default_args={"owner": "data-engineering", "retries": 0},
        params={"channel": Param(channel, type="string", enum=[channel], title="Channel"),
                "account": Param(type="string", minLength=1, title="Account",
                                 description="The account id in sales.accounts (vendor id / seller id)")},
        tags=[Tag.SIGN_IN.value, *(tag.value for tag in value.tags)],
        doc_md=doc_md,
        max_active_runs=8,
    ) as dag:
        SignInOperator(
            task_id="sign_in", channel=channel, attempts=attempts, wait_minutes=wait,
            pool=pool_name(value), execution_timeout=sign_in_timeout(attempts, wait), **browser_queue(),
            doc_md="Opens the account's browser profile, submits the password and, at the SMS step, waits for "
                   "the code from the Required Action of `ask_code_<k>` (the terminal command's sign-on).")
        previous = None
        for k in range(1, attempts + 1):
            ask = SmsCodeOperator(
                task_id=f"ask_code_{k}", channel=channel, attempt=k, attempts=attempts, wait_minutes=wait,
                params=code_params(),
                execution_timeout=sign_in_timeout(attempts, wait),
                doc_md=f"The Required Action for the {_ordinal(k)} SMS code: waits until `sign_in` asks for it, "
                       "or skips itself when the sign-on did not need it.")
            if previous is not None:
                previous >> ask
            previous = ask
    return dag
