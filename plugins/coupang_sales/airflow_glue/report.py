"""The collection report of one DAG run: each account's last attempt, readable in the Airflow UI.

The ``report`` task of each DAG builds it from ``sales.collection_runs`` (the audit every
attempt writes), pushes it as the XCom ``collection_report`` and prints it as a table in
its log, so the run's page answers "what happened to each account?" without SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg


def collection_report(conn: "psycopg.Connection", *, channel: str, run_id: str,
                      accounts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per account of the run: status, reason, counts, attempts and the action; plus totals.

    An account listed for the run but with no recorded attempt (its tasks never started
    or crashed before recording) is reported as ``not_recorded``, never left out.
    """
    from coupang_sales.warehouse.runs import last_attempts

    found = last_attempts(conn, channel=channel, run_id=run_id)
    rows = []
    for account in accounts:
        account_id = account["account_id"]
        if account_id not in found:
            rows.append({"account_id": account_id, "status": "not_recorded", "reason": None, "attempts": 0,
                         "window": None, "rows_extracted": None, "rows_loaded": None, "payment_amount": None,
                         "unapplied_restatements": 0, "unapplied_amount": 0, "unapplied_detail": [],
                         "sign_ons": None, "route": None,
                         "message": "No attempt was recorded: open the account's mapped tasks."})
            continue
        last = found[account_id]
        details = last.details or {}
        rows.append({"account_id": account_id, "status": last.status, "reason": last.reason,
                     "attempts": int(last.attempts),
                     "window": f"{last.window_start.isoformat()}..{last.window_end.isoformat()}",
                     "rows_extracted": last.rows_extracted,
                     "rows_loaded": last.rows_loaded, "payment_amount": details.get("payment_amount"),
                     "unapplied_restatements": details.get("unapplied_restatements") or 0,
                     "unapplied_amount": details.get("unapplied_amount") or 0,
                     "unapplied_detail": details.get("unapplied_detail") or [],
                     # passwords submitted for the account in this run, over all its browser tasks
                     "sign_ons": details.get("sign_ons"),
                     # the egress route, and the wait for it ('r2 (waited 40 s)'), when routes are shared
                     "route": (last.route + (f" (waited {last.route_wait_seconds} s)"
                                             if last.route_wait_seconds else "")) if last.route else None,
                     "message": last.message})
    statuses = [row["status"] for row in rows]
    return {"channel": channel, "run_id": run_id, "accounts": rows,
            "totals": {status: statuses.count(status) for status in sorted(set(statuses))},
            "warnings": sum(1 for row in rows if row["unapplied_restatements"])}


FAIL_RUN_ON = {
    "action_needed": "an account did not load for a reason the data team must act on (not a seller's own "
                     "action: tax_invoice_pending, sub_account_expired, auth_challenge)",
    "any": "any account did not load, a seller's action included",
    "never": "never: failures are alerted and shown in the report only",
}


def fail_run_on() -> str:
    """``COUPANG_FAIL_RUN_ON``: when the ``report`` task fails the run (``FAIL_RUN_ON``; default
    ``action_needed``). An unknown value is a configuration error."""
    from coupang_sales.config import settings

    return settings().fail_run_on


def run_failures(report: Mapping[str, Any], mode: str) -> list[Mapping[str, Any]]:
    """The accounts of ``report`` that make the run fail under ``mode`` (``FAIL_RUN_ON``)."""
    from coupang_sales.errors import SELLER_ACTION_CATEGORIES

    missing = [row for row in report["accounts"] if row["status"] != "success"]
    if mode == "never":
        return []
    if mode == "any":
        return missing
    return [row for row in missing if row["reason"] not in SELLER_ACTION_CATEGORIES]


def format_report(report: Mapping[str, Any]) -> str:
    """The report as a fixed-width table for the task log."""
    lines = [f"Collection report of {report['channel']} run {report['run_id']}: "
             + ", ".join(f"{n} {status}" for status, n in report["totals"].items())
             + (f"; {report['warnings']} account(s) with warnings" if report.get("warnings") else ""),
             f"  {'account':<14} {'status':<13} {'reason':<22} {'window':<22} {'tries':>5} {'written':>8} "
             f"{'payment won':>14} {'sign-ons':>8}  route"]
    for row in report["accounts"]:
        won = "-" if row["payment_amount"] is None else f"{row['payment_amount']:,}"
        loaded = "-" if row["rows_loaded"] is None else str(row["rows_loaded"])
        sign_ons = "-" if row.get("sign_ons") is None else str(row["sign_ons"])
        lines.append(f"  {row['account_id']:<14} {row['status']:<13} {row['reason'] or '':<22} "
                     f"{row['window'] or '':<22} {row['attempts']:>5} {loaded:>8} {won:>14} {sign_ons:>8}  "
                     f"{row.get('route') or '-'}")
        if row["status"] != "success" and row["message"]:
            lines.append(f"      {row['message']}")
        if row.get("unapplied_restatements"):
            lines.append(f"      WARNING: {row['unapplied_restatements']} return(s)/cancellation(s) with no original "
                         f"line, {row['unapplied_amount']:+,} won kept in sales.restatement_adjustments:")
            for item in row["unapplied_detail"]:
                where = f"{item['order_id']}/{item.get('option_id') or '-'}"
                lines.append(f"        {item['kind']} {item['document']} {where}"
                             f" dated {item['fact_date']}: {item['reason']} {item['amount']:+,} won")
    return "\n".join(lines)


def run_report(context: Mapping[str, Any], channel: str, accounts: Iterable[Mapping[str, Any]]) -> None:
    """The ``report`` task: the run's report as the XCom ``collection_report`` and a table in the log,
    the freshness alerts, and the run's state as ``COUPANG_FAIL_RUN_ON`` says."""
    import logging

    from airflow.sdk.exceptions import AirflowFailException

    from coupang_sales.airflow_glue.freshness import send_freshness_alerts
    from coupang_sales.airflow_glue.warehouse_hook import WarehouseHook

    log = logging.getLogger(__name__)
    mode = fail_run_on()
    with WarehouseHook().connected() as conn:
        summary = collection_report(conn, channel=channel, run_id=context["run_id"], accounts=accounts)
        try:
            send_freshness_alerts(context, channel, conn)
        except Exception:  # nothing was marked: the next run's report sends them
            log.exception("freshness alerts of %s not sent", channel)
    context["ti"].xcom_push(key="collection_report", value=summary)
    log.info("%s", format_report(summary))
    missing = [row for row in summary["accounts"] if row["status"] != "success"]
    failing = run_failures(summary, mode)
    if failing:
        raise AirflowFailException(
            f"{len(failing)} of {len(summary['accounts'])} account(s) did not load "
            f"(COUPANG_FAIL_RUN_ON={mode}): "
            + ", ".join(f"{row['account_id']} {row['status']} ({row['reason'] or 'see its tasks'})"
                        for row in failing))
    if missing:
        log.warning("%d account(s) did not load, alerted and in the report; the run does not fail for "
                    "them (COUPANG_FAIL_RUN_ON=%s): %s", len(missing), mode,
                    ", ".join(f"{row['account_id']} {row['reason']}" for row in missing))
