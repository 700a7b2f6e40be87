"""PostgreSQL warehouse access: schema, the all-or-nothing window load, and the collection audit."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from coupang_sales.model import ORDER_LINE_COLUMNS, Window

if TYPE_CHECKING:
    import pandas as pd
    import psycopg

FEE_COLUMNS = ("channel", "account_id", "period_start", "period_end", "settlement_group_key", "fee_type", "amount")


def schema_sql() -> str:
    return resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")


def apply_schema(conn: "psycopg.Connection") -> None:
    """Create or update the ``sales`` schema; safe to call on every run."""
    with conn.transaction(), conn.cursor() as cur:
        # Serialise concurrent first runs: CREATE ... IF NOT EXISTS still races on the catalog.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('coupang_sales.schema'))")
        cur.execute(schema_sql())


@dataclass(frozen=True)
class LoadResult:
    rows_loaded: int
    added: int
    changed: int
    removed: int

    def as_dict(self) -> dict[str, int]:
        return {"rows_loaded": self.rows_loaded, "added": self.added,
                "changed": self.changed, "removed": self.removed}


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_CHUNK_ROWS = 100_000


def _copy_column(series: "pd.Series", column: str) -> list[str]:
    """One column as COPY text-format fields: ``\\N`` for NULL, ints as digits, dates ISO,
    booleans t/f, text with backslash, tab and line breaks escaped.

    A float anywhere is a bug upstream (money is integer won), so it raises instead of
    being rounded here; so does any other type.
    """
    import numpy as np
    import pandas as pd
    from pandas.api import types

    if types.is_bool_dtype(series.dtype):
        return ["\\N" if pd.isna(v) else ("t" if v else "f") for v in series.tolist()]
    if types.is_integer_dtype(series.dtype):  # int64 and the nullable Int64
        return ["\\N" if v is None or v is pd.NA else str(v) for v in series.astype("object").tolist()]
    if types.is_float_dtype(series.dtype):
        raise TypeError(f"column {column!r} is float ({series.dtype}); warehouse rows must carry integer won")
    values = series.tolist()
    if isinstance(series.dtype, pd.StringDtype):  # a text column marks its missing cells NaN
        missing_cells = series.isna().tolist()
    else:  # in an object column a NaN is a float, and raises below
        missing_cells = [v is None or v is pd.NA or v is pd.NaT for v in values]
    out = []
    for value, missing in zip(values, missing_cells, strict=True):
        kind = type(value)
        if kind is str:
            out.append(value.translate(_COPY_ESCAPES))
        elif missing:
            out.append("\\N")
        elif kind is bool or isinstance(value, np.bool_):
            out.append("t" if value else "f")
        elif kind is int or isinstance(value, np.integer):
            out.append(str(int(value)))
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            out.append(value.isoformat())
        else:
            raise TypeError(f"column {column!r} holds a {kind.__name__} ({value!r}); "
                            "warehouse rows must carry integer won, text ids and dates")
    return out


def _copy_chunks(frame: "pd.DataFrame", columns: tuple[str, ...]):
    """The rows of ``frame`` as COPY text format (tab-separated, one line per row), in chunks.

    Column by column, not row by row: a million rows convert in a few seconds.
    """
    for first in range(0, len(frame), _COPY_CHUNK_ROWS):
        part = frame.iloc[first:first + _COPY_CHUNK_ROWS]
        fields = [_copy_column(part[column], column) for column in columns]
        yield ("".join("\t".join(row) + "\n" for row in zip(*fields, strict=True))).encode()


def replace_window(
    conn: "psycopg.Connection",
    *,
    channel: str,
    account_id: str,
    window: Window,
    lines: "pd.DataFrame",
    run_id: str | None,
    account_fees: "pd.DataFrame | None" = None,
    fee_periods: "list[tuple[dt.date, dt.date]] | None" = None,
) -> LoadResult:
    """Replace one account's ``sales.order_lines`` for ``window`` with ``lines``, atomically.

    Everything happens in one transaction under an advisory lock per (channel, account),
    so two overlapping runs of the same account serialise and a failure leaves the
    warehouse as it was. Rows of the window that the new extract no longer has are
    removed; every added, changed or removed line is written to
    ``sales.order_line_changes`` with the run that did it. ``account_fees`` (Jet v2
    account-level fees per settlement period) replace, in the same transaction, the fees of
    every period overlapping one of ``fee_periods`` (the settlement groups collected; by
    default the periods of ``account_fees``).
    """
    bad = lines[(lines["channel"] != channel) | (lines["account_id"] != account_id)]
    if len(bad):
        raise ValueError(f"{len(bad)} rows do not belong to {channel}/{account_id}")
    outside = lines[[not (window.start <= d <= window.end) for d in lines["sales_date"]]]
    if len(outside):
        raise ValueError(
            f"{len(outside)} rows of {channel}/{account_id} are dated outside the window {window}, "
            f"e.g. {outside['sales_date'].iloc[0]}")
    cols = ", ".join(ORDER_LINE_COLUMNS)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"order_lines:{channel}:{account_id}",))
        cur.execute(
            "CREATE TEMP TABLE incoming ON COMMIT DROP AS "
            f"SELECT {cols} FROM sales.order_lines WITH NO DATA")
        with cur.copy(f"COPY incoming ({cols}) FROM STDIN") as copy:
            for chunk in _copy_chunks(lines, ORDER_LINE_COLUMNS):
                copy.write(chunk)
        # The lines this load replaces: the window's rows, plus any row whose key comes
        # back with a date moved into the window.
        cur.execute(
            """
            CREATE TEMP TABLE replaced ON COMMIT DROP AS
            SELECT o.* FROM sales.order_lines o
            WHERE o.channel = %(channel)s AND o.account_id = %(account)s
              AND (o.sales_date BETWEEN %(start)s AND %(end)s
                   OR EXISTS (SELECT 1 FROM incoming i
                              WHERE i.order_id = o.order_id AND i.line_key = o.line_key))
            """,
            {"channel": channel, "account": account_id, "start": window.start, "end": window.end},
        )
        cur.execute(
            """
            INSERT INTO sales.order_line_changes
                (channel, account_id, order_id, line_key, sales_date, change,
                 old_payment_amount, new_payment_amount, old_quantity, new_quantity, run_id)
            SELECT %(channel)s, %(account)s,
                   coalesce(i.order_id, r.order_id), coalesce(i.line_key, r.line_key),
                   coalesce(i.sales_date, r.sales_date),
                   CASE WHEN r.order_id IS NULL THEN 'added'
                        WHEN i.order_id IS NULL THEN 'removed' ELSE 'changed' END,
                   r.payment_amount, i.payment_amount, r.quantity, i.quantity, %(run_id)s
            FROM incoming i
            FULL JOIN replaced r ON r.order_id = i.order_id AND r.line_key = i.line_key
            WHERE r.order_id IS NULL OR i.order_id IS NULL
               OR (r.payment_amount, r.quantity, r.sales_date, r.gross_amount, r.is_cancelled)
                  IS DISTINCT FROM
                  (i.payment_amount, i.quantity, i.sales_date, i.gross_amount, i.is_cancelled)
            RETURNING change
            """,
            {"channel": channel, "account": account_id, "run_id": run_id},
        )
        changes = [row[0] for row in cur.fetchall()]
        cur.execute(
            """
            DELETE FROM sales.order_lines o USING replaced r
            WHERE o.channel = r.channel AND o.account_id = r.account_id
              AND o.order_id = r.order_id AND o.line_key = r.line_key
            """
        )
        cur.execute(
            f"INSERT INTO sales.order_lines ({cols}, run_id) SELECT {cols}, %s FROM incoming",
            (run_id,),
        )
        loaded = cur.rowcount
        if account_fees is not None:
            periods = fee_periods if fee_periods is not None else sorted(
                set(zip(account_fees["period_start"], account_fees["period_end"], strict=True)))
            _replace_fees(cur, channel=channel, account_id=account_id, periods=periods, fees=account_fees,
                          run_id=run_id)
    return LoadResult(loaded, changes.count("added"), changes.count("changed"), changes.count("removed"))


def _replace_fees(cur, *, channel: str, account_id: str, periods: list[tuple[dt.date, dt.date]],
                  fees: "pd.DataFrame", run_id: str | None) -> None:
    """Replace the account-level fees of the settlement periods collected (Jet v2 보관비 and the like).

    A period collected again replaces what was stored for it, and for any stored period it
    overlaps (a switch between weekly and monthly settlement), so no fee is counted twice.
    """
    stray = [(s, e) for s, e in zip(fees["period_start"], fees["period_end"], strict=True) if (s, e) not in periods]
    if stray:
        raise ValueError(f"{len(stray)} account fees of {channel}/{account_id} belong to no collected settlement "
                         f"period, e.g. {stray[0]}")
    for start, end in periods:
        cur.execute(
            "DELETE FROM sales.account_fees WHERE channel = %s AND account_id = %s "
            "AND period_start <= %s AND period_end >= %s",
            (channel, account_id, end, start),
        )
    if len(fees):
        with cur.copy(f"COPY sales.account_fees ({', '.join(FEE_COLUMNS)}, run_id) FROM STDIN") as copy:
            for chunk in _copy_chunks(fees.assign(run_id=run_id), (*FEE_COLUMNS, "run_id")):
                copy.write(chunk)


def active_accounts(conn: "psycopg.Connection", channel: str) -> list[dict[str, Any]]:
    """The active accounts of a channel: ids and connection names only, never credentials."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT account_id, conn_id, jet_version FROM sales.accounts "
            "WHERE channel = %s AND active ORDER BY account_id",
            (channel,),
        )
        return [{"channel": channel, "account_id": a, "conn_id": c, "jet_version": v}
                for a, c, v in cur.fetchall()]


def upsert_account(conn: "psycopg.Connection", *, channel: str, account_id: str, conn_id: str,
                   jet_version: int | None = None, active: bool = True) -> None:
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO sales.accounts (channel, account_id, conn_id, jet_version, active)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (channel, account_id) DO UPDATE
            SET conn_id = excluded.conn_id, jet_version = excluded.jet_version, active = excluded.active
            """,
            (channel, account_id, conn_id, jet_version, active),
        )


def record_run(
    conn: "psycopg.Connection", *, channel: str, account_id: str, window: Window, status: str,
    reason: str | None = None, message: str | None = None, rows_extracted: int | None = None,
    rows_loaded: int | None = None, started_at: dt.datetime | None = None,
    run_id: str | None = None, task_id: str | None = None, try_number: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one attempt to ``sales.collection_runs`` (committed at once, whatever follows)."""
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO sales.collection_runs
                (channel, account_id, window_start, window_end, status, reason, message,
                 rows_extracted, rows_loaded, started_at, run_id, task_id, try_number, details)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (channel, account_id, window.start, window.end, status, reason, message,
             rows_extracted, rows_loaded, started_at, run_id, task_id, try_number,
             json.dumps(details, ensure_ascii=False, default=str) if details else None),
        )
