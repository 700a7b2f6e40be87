"""When a collection run ends, every mapped task instance is labelled by its account and each seller's action
is the note of the task that met it.

A listener of the project's plugin, called in the scheduler (or the API server, when a person marks the
run) with the run in its session (``on_dag_run_success`` / ``on_dag_run_failed``). Airflow 3.3 gives a
task instance no other way to either:

- ``map_index_template`` is rendered by the task runner, so only instances that ran carry the account;
  those the scheduler skipped or marked ``upstream_failed`` behind a seller's action or a failure would
  show "2", "3". Here each instance of the run with no label gets its account, the same label the
  template renders (``accounts[map_index]`` of ``list_accounts``, which the group is mapped over).
- the task SDK and the execution API can set no task-instance note (only the run's). A task that ends
  for a seller's action leaves it in its XCom ``seller_action`` (``outcomes.seller_action_outcome``);
  here it becomes that task instance's note, shown in the Grid beside the skipped task. A note the
  listener wrote earlier for a task that no longer ends so (cleared and collected since) is removed; a
  person's note (one with a user) is never touched.

Until the run ends, the instances Airflow skipped show their map index, as Airflow draws them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow.listeners import hookimpl

from coupang_sales.airflow_glue.notes import COLLECTION_DAG_PREFIXES
from coupang_sales.airflow_glue.outcomes import XCOM_KEY

log = logging.getLogger(__name__)

ACCOUNTS_TASK = "list_accounts"
NOTE_PREFIX = "Seller action needed ("  # the notes this listener writes (audit.action_line)
NOTE_LIMIT = 1000  # task_instance_note.content is a varchar(1000)
LABEL_LIMIT = 250  # task_instance.rendered_map_index is a varchar(250)


@dataclass(frozen=True)
class Instance:
    """What the listener reads of one mapped task instance."""

    task_id: str
    map_index: int
    state: str | None
    label: str | None  # the stored rendered_map_index
    note: str | None
    note_by_person: bool


@dataclass(frozen=True)
class Change:
    task_id: str
    map_index: int
    label: str | None = None  # set this label
    note: str | None = None  # set this note
    drop_note: bool = False  # remove the note this listener wrote


def account_labels(accounts: Any) -> list[str | None]:
    """The label of each map index: the account id of ``list_accounts``'s item at that index."""
    if not isinstance(accounts, list):
        return []
    return [str(a["account_id"]) if isinstance(a, Mapping) and a.get("account_id") else None for a in accounts]


def grid_changes(instances: Iterable[Instance], labels: Sequence[str | None],
                 actions: Mapping[tuple[str, int], Any]) -> list[Change]:
    """The labels and notes to write: a label where none was rendered, the seller's action as the note of
    the skipped task that left one (``actions``: (task, map index) -> its ``seller_action`` XCom)."""
    changes = []
    for ti in instances:
        label = labels[ti.map_index] if ti.label is None and 0 <= ti.map_index < len(labels) else None
        action = actions.get((ti.task_id, ti.map_index)) if ti.state == "skipped" else None
        text = _note_text(action)
        ours = ti.note is not None and not ti.note_by_person and ti.note.startswith(NOTE_PREFIX)
        note, drop = None, False
        if text and (ti.note is None or ours) and ti.note != text:
            note = text
        elif not text and ours:
            drop = True
        if label or note or drop:
            changes.append(Change(ti.task_id, ti.map_index, label=label, note=note, drop_note=drop))
    return changes


def _note_text(action: Any) -> str | None:
    if isinstance(action, Mapping) and action.get("note"):
        return str(action["note"])[:NOTE_LIMIT]
    if isinstance(action, str) and action:
        return action[:NOTE_LIMIT]
    return None


def label_and_note(dag_run, session) -> list[Change]:
    """Apply ``grid_changes`` to the run's task instances, in ``session`` (the caller commits)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    tis = session.scalars(select(TaskInstance).where(
        TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id,
        TaskInstance.map_index >= 0)).all()
    if not tis:
        return []
    xcoms = session.scalars(select(XComModel).where(
        XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id,
        ((XComModel.task_id == ACCOUNTS_TASK) & (XComModel.key == "return_value") & (XComModel.map_index == -1))
        | (XComModel.key == XCOM_KEY))).all()
    labels: list[str | None] = []
    actions: dict[tuple[str, int], Any] = {}
    for xcom in xcoms:
        value = XComModel.deserialize_value(xcom)
        if xcom.key == XCOM_KEY:
            actions[(xcom.task_id, xcom.map_index)] = value
        else:
            labels = account_labels(value)
    by_key = {(ti.task_id, ti.map_index): ti for ti in tis}
    instances = []
    for ti in tis:
        stored = ti.task_instance_note
        instances.append(Instance(task_id=ti.task_id, map_index=ti.map_index,
                                  state=str(getattr(ti.state, "value", ti.state)) if ti.state else None,
                                  label=ti._rendered_map_index,
                                  note=stored.content if stored is not None else None,
                                  note_by_person=bool(stored is not None and stored.user_id)))
    changes = grid_changes(instances, labels, actions)
    for change in changes:
        ti = by_key[(change.task_id, change.map_index)]
        if change.label:
            ti._rendered_map_index = change.label[:LABEL_LIMIT]
        if change.note:
            if ti.task_instance_note is None:
                ti.note = change.note
            else:
                ti.task_instance_note.content = change.note
        if change.drop_note and ti.task_instance_note is not None:
            session.delete(ti.task_instance_note)
    session.flush()
    return changes


def _on_end(dag_run) -> None:
    if not str(dag_run.dag_id).startswith(COLLECTION_DAG_PREFIXES):
        return
    from sqlalchemy.orm import object_session

    try:
        session = object_session(dag_run)
        if session is None:
            from airflow.utils.session import create_session

            with create_session() as session:
                label_and_note(session.merge(dag_run), session)
            return
        # in the caller's transaction, which commits it (the scheduler forbids any other commit, a savepoint's
        # included, and a second session could wait on the rows this transaction changed)
        label_and_note(dag_run, session)
    except Exception as exc:  # labels and notes are for reading the Grid; the run's state is not theirs
        log.warning("no account labels or seller notes for %s %s: %s: %s", dag_run.dag_id, dag_run.run_id,
                    type(exc).__name__, exc)


@hookimpl
def on_dag_run_success(dag_run, msg: str) -> None:
    _on_end(dag_run)


@hookimpl
def on_dag_run_failed(dag_run, msg: str) -> None:
    _on_end(dag_run)
