"""Each collection run's note says which Asia/Seoul dates it collects.

A listener of the project's plugin: when the scheduler starts a run of a collection DAG
(``on_dag_run_running``, called in the scheduler with the run in its session), a run without a
note gets one, e.g. ``Collects 2026-01-06 (Asia/Seoul) and the 14 days before``. The Grid and
the runs list show it beside the run, so nobody has to turn a UTC run-after time into a Seoul
date (and, for a run of one account, which). A person's own note is never replaced.

The dates come from ``window.resolve_window``, the function the tasks use, over what the
scheduler knows of the run (its type, logical date, data interval and conf), so the note and the
collection cannot disagree. When a manual run's ``date`` param names another day than its
logical date would, the param wins (as in the tasks) and the note says both.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

COLLECTION_DAG_PREFIXES = ("coupang_rocket_sales", "coupang_jet_sales")


def collection_note(*, run_type: str, conf: dict[str, Any] | None, logical_date, data_interval_start,
                    data_interval_end) -> str:
    """The note of a collection run: the Seoul dates it collects (before any account's cursor)."""
    from coupang_sales.airflow_glue.window import resolve_window

    params = dict(conf or {})
    context = {"params": params, "logical_date": logical_date, "data_interval_start": data_interval_start,
               "data_interval_end": data_interval_end, "dag_run": SimpleNamespace(run_type=run_type)}
    window = resolve_window(context)
    if params.get("from_date"):
        text = f"Collects {window.start} – {window.end} (Asia/Seoul), one range run"
    else:
        days = (window.end - window.start).days
        text = f"Collects {window.end} (Asia/Seoul)" + (f" and the {days} days before" if days else "")
    if params.get("account_id"):
        text += f", account {params['account_id']} only"
    if params.get("date") and not params.get("from_date") and logical_date is not None:
        implied = resolve_window({**context, "params": {k: v for k, v in params.items() if k != "date"}}).end
        if implied != window.end:
            text += f"; the form's date {window.end} wins over the logical date's {implied}"
    return text


@hookimpl
def on_dag_run_running(dag_run, msg: str) -> None:
    if not str(dag_run.dag_id).startswith(COLLECTION_DAG_PREFIXES) or dag_run.note:
        return
    try:
        run_type = str(getattr(dag_run.run_type, "value", dag_run.run_type))
        dag_run.note = collection_note(run_type=run_type, conf=dag_run.conf, logical_date=dag_run.logical_date,
                                       data_interval_start=dag_run.data_interval_start,
                                       data_interval_end=dag_run.data_interval_end)
    except Exception as exc:  # a bad conf fails the run's tasks with its own message; the note is optional
        log.warning("no Seoul-date note for %s %s: %s: %s", dag_run.dag_id, dag_run.run_id,
                    type(exc).__name__, exc)
