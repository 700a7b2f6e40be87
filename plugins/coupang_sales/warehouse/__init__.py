"""PostgreSQL warehouse access: schema migrations, the all-or-nothing window load, and the collection audit."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coupang_sales.model import ADJUSTMENT_COLUMNS, FACT_COLUMNS, ORDER_LINE_COLUMNS, RESTATEMENT_COLUMNS, Window

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    import psycopg

    from coupang_sales.facts import Derived

log = logging.getLogger(__name__)

FEE_COLUMNS = ("channel", "account_id", "period_start", "period_end", "settlement_group_key", "fee_type", "amount")
CHANGE_COLUMNS = ("channel", "account_id", "order_id", "line_key", "sales_date", "change", "old_payment_amount",
                  "new_payment_amount", "old_quantity", "new_quantity", "run_id", "cause", "cause_facts")
# Column lists of the fact load's statements, built once from the constants above.
_FACT_COLS = ", ".join(FACT_COLUMNS)
_FACT_COLS_F = ", ".join("f." + c for c in FACT_COLUMNS)
_FACT_CONTENT_F = ", ".join("f." + c for c in FACT_COLUMNS if c not in ("fact_kind", "order_id", "fact_key"))
_FACT_CONTENT_I = ", ".join("i." + c for c in FACT_COLUMNS if c not in ("fact_kind", "order_id", "fact_key"))
_FACT_UPDATES_C = ", ".join(f"{c} = c.{c}" for c in FACT_COLUMNS if c not in ("fact_kind", "order_id", "fact_key"))
_LINE_COLS = ", ".join(ORDER_LINE_COLUMNS)
_LINE_COLS_O = ", ".join("o." + c for c in ORDER_LINE_COLUMNS)
_RESTATEMENT_COLS = ", ".join(RESTATEMENT_COLUMNS)
_ADJUSTMENT_COLS = ", ".join(ADJUSTMENT_COLUMNS)
_CHANGE_COLS = ", ".join(CHANGE_COLUMNS)


def account_lock_key(channel: str, account_id: str) -> str:
    """The key of the advisory lock every load of the account holds for its transaction
    (``pg_advisory_xact_lock(hashtext(key))``): two loads of one account run one after the other."""
    return f"order_lines:{channel}:{account_id}"


@dataclass(frozen=True)
class LoadResult:
    # the order lines the load wrote: those of the groups whose facts changed (0 when no fact did), shown
    # as 'written' in the run report; not the lines of the window, most of which a rerun leaves as they are
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


# Facts that make a line of their own (line_key = fact_key): a group read with one of these and no
# such line in the warehouse is derived again even when its facts did not change.
LINE_FACT_KINDS = ("rocket_receipt", "jet_settlement")
# Groups handed to ``derive`` at a time by ``load_facts``: a policy is local to its group, so this
# bounds the memory of a load whatever the size of the account (Rocket: a 발주번호/SKU번호 holds a
# fact or two; Jet: an order a few).
DERIVE_CHUNK_GROUPS = 100_000
# ``work_mem`` of a fact load's transaction (``SET LOCAL``): each sort or hash of the diff and the change
# log may use this much of the server's memory before spilling to disk.
LOAD_WORK_MEM = "64MB"


def _arrow_table(frame: "pd.DataFrame", columns: tuple[str, ...]):
    """``frame``'s ``columns`` as an Arrow table; a float column is a bug upstream (money is integer won)
    and raises, as does any type the warehouse rows do not carry."""
    import pyarrow as pa

    table = pa.Table.from_pandas(frame.loc[:, list(columns)], preserve_index=False)
    for field in table.schema:
        kind = field.type
        if pa.types.is_floating(kind):
            raise TypeError(f"column {field.name!r} is float ({kind}); warehouse rows must carry integer won")
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
                or pa.types.is_boolean(kind) or pa.types.is_date32(kind) or pa.types.is_null(kind)):
            raise TypeError(f"column {field.name!r} holds {kind}; warehouse rows must carry integer won, "
                            "text ids and dates")
    return table


def _copy_in(cur, table: str, frame: "pd.DataFrame", columns: tuple[str, ...]) -> None:
    """COPY ``frame``'s ``columns`` into ``table`` as CSV written by Arrow (C++, a million rows in about
    a second): text quoted (so '' stays '' and a missing cell is NULL), integers as digits, dates ISO."""
    import pyarrow.csv as pacsv

    data = _arrow_table(frame, columns)
    if not data.num_rows:
        return
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    from psycopg import sql

    with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))) as copy:
        for batch in data.to_batches(max_chunksize=_COPY_CHUNK_ROWS):
            sink = io.BytesIO()
            pacsv.write_csv(batch, sink, options)
            copy.write(sink.getbuffer())


def _fact_types() -> dict[str, Any]:
    """The Arrow types of FACT_COLUMNS as ``sales.collected_facts`` holds them."""
    import pyarrow as pa

    text = {"fact_kind", "order_id", "fact_key", "group_key", "document", "option_id", "product_name"}
    return {name: pa.string() if name in text else pa.date32() if name == "fact_date" else pa.int64()
            for name in FACT_COLUMNS}


def _refresh_fact_statistics(cur, *, written: int) -> None:
    """ANALYZE ``sales.collected_facts`` in the load's transaction when it has just written more than a
    tenth of the facts the statistics know of (see ``_KNOWN_FACTS``); skipped, with a log line, when
    another load holds the table's ANALYZE lock longer than ``_ANALYZE_LOCK_WAIT``. A role that does not
    own the table gets PostgreSQL's warning instead and the load goes on without: grant the loading role
    ownership (or, on PostgreSQL 17, MAINTAIN) for the statistics to be refreshed."""
    from psycopg import errors

    known = max(int(cur.execute(_KNOWN_FACTS).fetchone()[0]), 0)
    if written <= max(known // 10, 1_000):
        return
    cur.execute("SAVEPOINT fact_statistics")
    was = cur.execute(_LOCK_WAIT_SET, {"wait": _ANALYZE_LOCK_WAIT}).fetchone()[0]
    try:
        cur.execute(_ANALYZE_FACTS)
    except errors.LockNotAvailable:
        cur.execute("ROLLBACK TO SAVEPOINT fact_statistics")  # the lock wait set above goes with it
        log.info("sales.collected_facts not analysed: another load holds its ANALYZE lock")
        return
    cur.execute("RELEASE SAVEPOINT fact_statistics")
    cur.execute(_LOCK_WAIT_RESTORED, {"wait": was})


def _copy_out(cur, query: str, params: dict[str, Any], types: dict[str, Any]) -> "pd.DataFrame":
    """The rows of ``query`` through COPY ... TO STDOUT as CSV, read by Arrow: text as text ('' kept apart
    from NULL), integers as nullable ``Int64`` (never through float), dates as ``datetime.date``."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from psycopg import sql

    buffer = bytearray()
    with cur.copy(sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(sql.SQL(query)), params) as copy:
        for data in copy:
            buffer += data
    schema = pa.schema(list(types.items()))
    if buffer:
        table = pacsv.read_csv(
            pa.py_buffer(bytes(buffer)),
            read_options=pacsv.ReadOptions(column_names=list(types)),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types=schema, strings_can_be_null=True,
                                                 quoted_strings_can_be_null=False))
    else:
        table = schema.empty_table()
    integers = {kind: pd.Int64Dtype() for kind in (pa.int64(), pa.int32(), pa.int16())}
    frame = table.to_pandas(types_mapper=integers.get)
    for name, kind in types.items():
        if pa.types.is_string(kind):
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


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
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (account_lock_key(channel, account_id),))
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


@dataclass(frozen=True)
class FactLoadResult(LoadResult):
    facts_new: int = 0
    facts_changed: int = 0
    facts_removed: int = 0
    groups: int = 0
    unapplied: tuple[dict[str, Any], ...] = ()   # restatements with no original, in the groups this load touched
    price_difference: int = 0                    # Σ 'price_difference' adjustments of those groups
    superseded: int = 0                          # lines of another source (Jet v1) the read dates replaced

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "facts_new": self.facts_new, "facts_changed": self.facts_changed,
                "facts_removed": self.facts_removed, "groups_derived": self.groups,
                "unapplied_restatements": len(self.unapplied),
                "unapplied_amount": sum(int(u["amount"]) for u in self.unapplied),
                "unapplied_fee": sum(int(u["seller_shipping_fee"]) for u in self.unapplied),
                "unapplied_detail": list(self.unapplied[:20]),
                "price_difference": self.price_difference,
                **({"superseded_lines": self.superseded} if self.superseded else {})}


_FACT_LABELS = {"rocket_receipt": "발주", "rocket_return": "반출", "jet_settlement": "주문 정산",
                "jet_cancellation": "주문 정산취소", "jet_order_fee": "per-order fee"}
_COMPARED = ("sales_date", "quantity", "gross_amount", "coupon_discount", "payment_amount", "seller_shipping_fee",
             "collected_commission", "is_cancelled", "cancelled_quantity", "cancelled_amount", "option_id",
             "product_name")
_COMPARED_O = ", ".join("o." + c for c in _COMPARED)
_COMPARED_N = ", ".join("n." + c for c in _COMPARED)
_LABEL_OF_KIND = ("CASE f.fact_kind "
                  + " ".join(f"WHEN '{kind}' THEN '{label}'" for kind, label in _FACT_LABELS.items())
                  + " ELSE f.fact_kind END")
# The stored facts of one chunk of the groups a load derives (``load_facts``): driven from the chunk's
# groups, one probe of ``collected_facts_by_group`` each (OFFSET 0 keeps the planner from flattening the
# lateral subquery). A join the planner ordered itself scanned every fact of the account per chunk: the
# facts the load has just inserted are not in the table's statistics yet (1.6 s a chunk at 1,000,000
# facts, 10 chunks). The probes need the table's statistics to know a group is a few facts of the
# account: without them every condition's share is guessed (1/200) and the estimates clamp to one row, so
# an index of (channel, account_id) alone looked as good as ``collected_facts_by_group``, and each probe
# read every fact of the account: a first load of 100,000 Jet report rows ran for minutes in this
# statement. ``_refresh_fact_statistics`` gives the planner what it needs first.
_STORED_FACTS_OF_CHUNK = f"""
    SELECT {_FACT_COLS_F}
    FROM affected a
    CROSS JOIN LATERAL (SELECT * FROM sales.collected_facts s
                        WHERE s.channel = %(channel)s AND s.account_id = %(account)s
                          AND s.group_key = a.group_key AND s.fact_kind = ANY(%(kinds)s) OFFSET 0) f
    WHERE a.chunk = %(chunk_no)s
    ORDER BY f.group_key, f.fact_kind, f.order_id, f.fact_key
"""
# A load that wrote more than a tenth of the facts the table's statistics know of (autovacuum's own
# threshold for analysing, which would only come after the commit) analyses the table inside its
# transaction, where its own rows count. ANALYZE holds a lock another load's ANALYZE waits on until this
# load commits: that load waits at most ``_ANALYZE_LOCK_WAIT`` and goes on without (its probes may then
# be slower, never wrong).
_KNOWN_FACTS = "SELECT reltuples::bigint FROM pg_class WHERE oid = 'sales.collected_facts'::regclass"
_ANALYZE_LOCK_WAIT = "2s"
_ANALYZE_FACTS = "ANALYZE sales.collected_facts"
_LOCK_WAIT_SET = "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %(wait)s, true)"
_LOCK_WAIT_RESTORED = "SELECT set_config('lock_timeout', %(wait)s, true)"
# The diff of ``load_facts``: one full join of the extract's facts with the account's stored facts of the
# kinds loaded (one hash of each side, where a left join and an anti join built the stored side's twice).
# An extract's fact is new or changed; a stored fact of what was read (its date in the read range or its
# document read) and absent from the extract is removed; any other stored fact is not this load's.
_FACT_PICKED = ", ".join(f"CASE WHEN i.fact_key IS NULL THEN f.{c} ELSE i.{c} END AS {c}" for c in FACT_COLUMNS)
_FACT_DIFF = f"""
    CREATE TEMP TABLE fact_changes ON COMMIT DROP AS
    SELECT {_FACT_PICKED}, i.ord,
           CASE WHEN i.fact_key IS NULL THEN 'removed' WHEN f.fact_key IS NULL THEN 'new' ELSE 'changed' END AS status
    FROM incoming_facts i
    FULL JOIN (SELECT * FROM sales.collected_facts
               WHERE channel = %(channel)s AND account_id = %(account)s AND fact_kind = ANY(%(kinds)s)) f
      ON f.fact_kind = i.fact_kind AND f.order_id = i.order_id AND f.fact_key = i.fact_key
    WHERE CASE WHEN i.fact_key IS NULL
               THEN f.fact_date BETWEEN %(start)s AND %(end)s OR f.document = ANY(%(documents)s)
               ELSE f.fact_key IS NULL OR ({_FACT_CONTENT_F}) IS DISTINCT FROM ({_FACT_CONTENT_I}) END
"""


# Statements driven by a few rows of a temporary table (the facts a load changed, the lines of the groups it
# derives) probe the account's rows one index lookup a row, through LATERAL ... OFFSET 0, which the planner
# cannot flatten into a join. Left to itself it joins instead, scanning every row of the account, for
# anything over a few thousand rows: it costs each probe as a read from disk. On the warehouse's cached
# pages a probe takes about 40 µs and the scan about 1 µs a row, so the probes are used while the driving
# rows are at most one in ``_PROBE_SHARE`` of the table's (``_probes_pay``); beyond that, the join.
# Measured on a 1,000,000-fact account with 9,800 facts changed: the facts' UPDATE 2.6 -> 1.4 s, the old
# lines 0.9 -> 0.1 s, the lines' DELETE 0.7 -> 0.2 s. The UPDATE and the DELETE write the rows by the ctid
# their probe read: a row another transaction changed in between would be skipped (a join re-checks it by
# key), and none can be, for every writer of an account's facts and lines is a load of this module holding
# the account's advisory lock (``account_lock_key``) for its transaction.
_PROBE_SHARE = 40
# A table's rows as the planner's statistics know them, or as the statistics collector counted them when it
# was never analysed (a warehouse's first loads): either may lag, neither is read from the table itself.
_TABLE_ROWS = """
    SELECT greatest(c.reltuples::bigint, coalesce(s.n_live_tup, 0), 0)
    FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE c.oid = %(table)s::regclass
"""
_FACTS_UPDATED_JOINED = f"""
    UPDATE sales.collected_facts f SET {_FACT_UPDATES_C}, run_id = %(run_id)s, collected_at = now()
    FROM fact_changes c
    WHERE c.status = 'changed' AND f.channel = %(channel)s AND f.account_id = %(account)s
      AND f.fact_kind = c.fact_kind AND f.order_id = c.order_id AND f.fact_key = c.fact_key
"""
_FACTS_UPDATED_PROBED = f"""
    UPDATE sales.collected_facts f SET {_FACT_UPDATES_C}, run_id = %(run_id)s, collected_at = now()
    FROM (SELECT c.*, p.tid FROM fact_changes c
          CROSS JOIN LATERAL (SELECT s.ctid AS tid FROM sales.collected_facts s
                              WHERE s.channel = %(channel)s AND s.account_id = %(account)s
                                AND s.fact_kind = c.fact_kind AND s.order_id = c.order_id
                                AND s.fact_key = c.fact_key OFFSET 0) p
          WHERE c.status = 'changed') c
    WHERE f.ctid = c.tid
"""
# The lines the affected groups had (a group is a Jet 주문ID or a Rocket 발주번호/SKU번호), whatever their key
# layout: rows of an older layout of the same orders are replaced too. A line whose 주문ID is a group is of
# that group; any other, of its 발주번호/SKU번호 (``order_lines_by_rocket_group``).
_OLD_LINES_JOINED = f"""
    CREATE TEMP TABLE old_lines ON COMMIT DROP AS
    SELECT {_LINE_COLS_O},
           CASE WHEN o.order_id IN (SELECT group_key FROM affected) THEN o.order_id
                ELSE o.order_id || '/' || coalesce(o.option_id, '') END AS group_key
    FROM sales.order_lines o
    WHERE o.channel = %(channel)s AND o.account_id = %(account)s AND o.source = ANY(%(sources)s)
      AND (o.order_id IN (SELECT group_key FROM affected)
           OR o.order_id || '/' || coalesce(o.option_id, '') IN (SELECT group_key FROM affected))
"""
_OLD_LINES_PROBED = f"""
    CREATE TEMP TABLE old_lines ON COMMIT DROP AS
    SELECT {_LINE_COLS_O}, a.group_key
    FROM affected a
    CROSS JOIN LATERAL (SELECT * FROM sales.order_lines s
                        WHERE s.channel = %(channel)s AND s.account_id = %(account)s AND s.source = ANY(%(sources)s)
                          AND s.order_id = a.group_key OFFSET 0) o
    UNION ALL
    SELECT {_LINE_COLS_O}, a.group_key
    FROM affected a
    CROSS JOIN LATERAL (SELECT * FROM sales.order_lines s
                        WHERE s.channel = %(channel)s AND s.account_id = %(account)s AND s.source = ANY(%(sources)s)
                          AND s.order_id || '/' || coalesce(s.option_id, '') = a.group_key OFFSET 0) o
    WHERE o.order_id NOT IN (SELECT group_key FROM affected)
"""
_LINES_DELETED_JOINED = """
    DELETE FROM sales.order_lines o
    USING (SELECT order_id, line_key FROM new_lines UNION SELECT order_id, line_key FROM old_lines) k
    WHERE o.channel = %(channel)s AND o.account_id = %(account)s
      AND o.order_id = k.order_id AND o.line_key = k.line_key
"""
_LINES_DELETED_PROBED = """
    DELETE FROM sales.order_lines o
    USING (SELECT p.tid
           FROM (SELECT order_id, line_key FROM new_lines UNION SELECT order_id, line_key FROM old_lines) k
           CROSS JOIN LATERAL (SELECT s.ctid AS tid FROM sales.order_lines s
                               WHERE s.channel = %(channel)s AND s.account_id = %(account)s
                                 AND s.order_id = k.order_id AND s.line_key = k.line_key OFFSET 0) p) d
    WHERE o.ctid = d.tid
"""


def _probes_pay(cur, table: str, rows: int) -> bool:
    """Whether ``rows`` driving rows are few enough for one index probe each into ``table`` (see ``_PROBE_SHARE``)."""
    return rows <= max(int(cur.execute(_TABLE_ROWS, {"table": table}).fetchone()[0]) // _PROBE_SHARE, 1_000)


def load_facts(
    conn: "psycopg.Connection",
    *,
    channel: str,
    account_id: str,
    facts: "pd.DataFrame",
    kinds: tuple[str, ...],
    read_range: Window,
    documents: tuple[str, ...] = (),
    derive: "Callable[[pd.DataFrame], Derived]",
    sources: tuple[str, ...],
    run_id: str | None,
    account_fees: "pd.DataFrame | None" = None,
    fee_periods: "list[tuple[dt.date, dt.date]] | None" = None,
    supersedes: tuple[str, ...] = (),
) -> FactLoadResult:
    """Store one extract's facts and re-derive the order lines of every group whose facts changed, atomically.

    ``facts`` replace the account's stored facts of ``kinds`` that this extract read: those
    dated in ``read_range`` and those of ``documents`` (the invoices read). A fact is keyed by
    its source row, so a fact collected by an earlier run outside that range stays. Then, for
    every group a new, changed or removed fact belongs to (and every group read whose lines
    are missing from the warehouse), the lines are derived from *all* the stored facts of the
    group (``derive``) and replace the group's lines, restatements and adjustments: the result
    is a function of the facts collected so far, never of the window or the order of the runs.
    A group whose facts this extract read unchanged keeps what was derived from them before.

    The cost follows what changed, not what was read: the facts are compared with the stored
    ones in PostgreSQL (a temporary table loaded with COPY), the groups to derive are handed
    to ``derive`` ``DERIVE_CHUNK_GROUPS`` at a time (a policy is local to its group, so memory
    stays bounded whatever the account's size), and the derived rows go back by COPY into
    temporary tables, from which the changes, their causes and the swap are set operations.

    Lines of the account of the ``supersedes`` sources (Jet v1 for a v2 load) dated in
    ``read_range`` are removed: the dates this extract read have one truth, its own, whatever
    version collected them before (docs/decisions.md, "Jet version switches").

    Each added, changed or removed line is written to ``sales.order_line_changes`` with the
    facts of this load that caused it (``cause``, ``cause_facts``). Everything happens in
    one transaction under the account's advisory lock; a failure leaves the warehouse as
    it was.
    """
    from coupang_sales.facts import UNAPPLIED_REASONS, fact_frame

    bad = facts[~facts["fact_kind"].isin(kinds)]
    if len(bad):
        raise ValueError(f"{len(bad)} facts of {channel}/{account_id} are not of the kinds {kinds}")
    # Compared column-wise (the dates are ``datetime.date`` objects): a Python call per fact took 0.32 s
    # of every load of 1,000,000 facts, changed or not; this, 0.16 s.
    read = ((facts["fact_date"] >= read_range.start) & (facts["fact_date"] <= read_range.end)).astype(bool)
    outside = facts[~read & ~facts["document"].isin(documents)]
    if len(outside):
        raise ValueError(f"{len(outside)} facts of {channel}/{account_id} lie outside what was read "
                         f"({read_range}), e.g. {outside['fact_date'].iloc[0]}")
    who = {"channel": channel, "account": account_id, "kinds": list(kinds), "start": read_range.start,
           "end": read_range.end, "documents": list(documents), "run_id": run_id, "sources": list(sources),
           "line_kinds": list(LINE_FACT_KINDS), "chunk": DERIVE_CHUNK_GROUPS,
           "unapplied": list(UNAPPLIED_REASONS)}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (account_lock_key(channel, account_id),))
        # The diff, the chunks and the change log sort and hash a whole extract: at PostgreSQL's default
        # (4 MB) those spill to disk in batches; for this transaction only.
        cur.execute(f"SET LOCAL work_mem = '{LOAD_WORK_MEM}'")
        cur.execute(f"CREATE TEMP TABLE incoming_facts ON COMMIT DROP AS "
                    f"SELECT {_FACT_COLS} FROM sales.collected_facts WITH NO DATA")
        cur.execute("ALTER TABLE incoming_facts ADD COLUMN ord bigserial")  # the extract's order, for the audit
        _copy_in(cur, "incoming_facts", facts, FACT_COLUMNS)
        cur.execute("ANALYZE incoming_facts")
        # What this extract changes: facts new or different, and facts of what was read that are gone.
        cur.execute(_FACT_DIFF, who)
        cur.execute("ANALYZE fact_changes")
        # The groups to derive: those of a changed fact, and those read whose lines are not all in
        # the warehouse (a Jet v1 load replaced them, say); numbered into chunks for ``derive``.
        cur.execute(
            """
            CREATE TEMP TABLE affected ON COMMIT DROP AS
            SELECT group_key, (row_number() OVER (ORDER BY group_key) - 1) / %(chunk)s AS chunk
            FROM (SELECT group_key FROM fact_changes
                  UNION
                  SELECT i.group_key FROM incoming_facts i
                  WHERE i.fact_kind = ANY(%(line_kinds)s)
                    AND NOT EXISTS (SELECT 1 FROM sales.order_lines o
                                    WHERE o.channel = %(channel)s AND o.account_id = %(account)s
                                      AND o.order_id = i.order_id AND o.line_key = i.fact_key
                                      AND o.source = ANY(%(sources)s))) g
            """, who)
        cur.execute("ALTER TABLE affected ADD PRIMARY KEY (group_key)")
        cur.execute("CREATE INDEX ON affected (chunk)")
        cur.execute("ANALYZE affected")
        cur.execute("""
            DELETE FROM sales.collected_facts f USING fact_changes c
            WHERE c.status = 'removed' AND f.channel = %(channel)s AND f.account_id = %(account)s
              AND f.fact_kind = c.fact_kind AND f.order_id = c.order_id AND f.fact_key = c.fact_key
            """, who)
        # A changed fact is updated in place and a new one inserted without ON CONFLICT: the diff above,
        # under the account's lock, already tells them apart (a first load inserts every fact).
        cur.execute("SELECT status, count(*) FROM fact_changes GROUP BY status")
        fact_counts = dict(cur.fetchall())
        probed = _probes_pay(cur, "sales.collected_facts", fact_counts.get("changed", 0))
        cur.execute(_FACTS_UPDATED_PROBED if probed else _FACTS_UPDATED_JOINED, who)
        cur.execute(
            f"""
            INSERT INTO sales.collected_facts (channel, account_id, {_FACT_COLS}, run_id)
            SELECT %(channel)s, %(account)s, {_FACT_COLS}, %(run_id)s FROM fact_changes WHERE status = 'new'
            """, who)
        _refresh_fact_statistics(cur, written=cur.rowcount)
        cur.execute(f"CREATE TEMP TABLE new_lines ON COMMIT DROP AS SELECT {_LINE_COLS}, ''::text AS group_key "
                    "FROM sales.order_lines WITH NO DATA")
        cur.execute(f"CREATE TEMP TABLE new_restatements ON COMMIT DROP AS SELECT {_RESTATEMENT_COLS} "
                    "FROM sales.restatements WITH NO DATA")
        cur.execute(f"CREATE TEMP TABLE new_adjustments ON COMMIT DROP AS SELECT {_ADJUSTMENT_COLS} "
                    "FROM sales.restatement_adjustments WITH NO DATA")
        cur.execute("SELECT count(*), coalesce(max(chunk) + 1, 0) FROM affected")
        groups, chunks = cur.fetchone()
        for chunk in range(max(chunks, 1)):  # derive is called at least once, as before (an empty frame)
            stored = fact_frame(_copy_out(cur, _STORED_FACTS_OF_CHUNK, {**who, "chunk_no": chunk}, _fact_types()))
            derived = derive(stored)
            new_lines = derived.order_lines
            bad = new_lines[(new_lines["channel"] != channel) | (new_lines["account_id"] != account_id)]
            if len(bad):
                raise ValueError(f"{len(bad)} derived rows do not belong to {channel}/{account_id}")
            _copy_in(cur, "new_lines", new_lines, (*ORDER_LINE_COLUMNS, "group_key"))
            _copy_in(cur, "new_restatements", derived.restatements, RESTATEMENT_COLUMNS)
            _copy_in(cur, "new_adjustments", derived.adjustments, ADJUSTMENT_COLUMNS)
            del stored, derived, new_lines
        cur.execute("ANALYZE new_lines")
        cur.execute("ANALYZE new_restatements")
        cur.execute("ANALYZE new_adjustments")
        cur.execute("SELECT count(*) FROM new_lines")
        loaded = cur.fetchone()[0]
        changes = _write_lines(cur, who, groups=int(groups), new_lines=loaded)
        superseded = _supersede(cur, who, supersedes) if supersedes else 0
        if account_fees is not None:
            _replace_fees(cur, channel=channel, account_id=account_id, periods=list(fee_periods or []),
                          fees=account_fees, run_id=run_id)
        # What no line carries in the groups this load read or derived (whether derived again or not), in
        # the order the policies give it: by group, oldest restatement first, fees without a line last. The
        # account's adjustments are few beside its facts: the groups read are matched here, against the
        # extract's own keys, rather than by hashing every incoming fact in PostgreSQL (0.6 s at 1,000,000).
        cur.execute(
            """
            SELECT t.group_key IN (SELECT group_key FROM affected), t.group_key,
                   t.fact_kind, t.order_id, t.option_id, t.document, t.fact_date, t.reason, t.quantity, t.amount,
                   t.seller_shipping_fee
            FROM sales.restatement_adjustments t
            WHERE t.channel = %(channel)s AND t.account_id = %(account)s
              AND (t.reason = ANY(%(unapplied)s) OR t.reason = 'price_difference')
            ORDER BY t.reason = 'fee_without_line', t.group_key, t.option_id, t.fact_date, t.fact_key, t.reason
            """, who)
        adjustments = cur.fetchall()
        kept = [row[2:] for row, read in zip(adjustments, _read_groups(facts, [row[1] for row in adjustments]),
                                             strict=True) if row[0] or read]
    unapplied = [row for row in kept if row[5] in UNAPPLIED_REASONS]
    return FactLoadResult(
        rows_loaded=loaded, added=changes.get("added", 0), changed=changes.get("changed", 0),
        removed=changes.get("removed", 0) + superseded, superseded=superseded,
        facts_new=fact_counts.get("new", 0), facts_changed=fact_counts.get("changed", 0),
        facts_removed=fact_counts.get("removed", 0), groups=int(groups),
        unapplied=tuple({"kind": _FACT_LABELS.get(kind, kind), "order_id": order_id, "option_id": option_id,
                         "document": document, "fact_date": fact_date.isoformat(), "reason": reason,
                         "quantity": int(quantity), "amount": int(amount),
                         "seller_shipping_fee": int(fee)}
                        for kind, order_id, option_id, document, fact_date, reason, quantity, amount, fee
                        in unapplied),
        price_difference=sum(int(row[7]) for row in kept if row[5] == "price_difference"),
    )


def _read_groups(facts: "pd.DataFrame", groups: list[str]) -> list[bool]:
    """Whether each of ``groups`` is the group of one of ``facts``. The few ``groups`` are hashed and the
    facts' keys looked up in them (Arrow, column-wise): hashing a million facts' keys instead took a third
    of a second of every load, changed or not."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not groups:
        return []
    wanted = pa.array(groups, pa.string())
    keys = pa.array(facts["group_key"], pa.string())
    found = pc.unique(keys.filter(pc.is_in(keys, value_set=wanted)))
    return pc.is_in(wanted, value_set=found).to_pylist()


def _supersede(cur, who: dict[str, Any], sources: tuple[str, ...]) -> int:
    """Remove the account's lines of ``sources`` dated in the range read, each written to
    ``sales.order_line_changes`` as removed, caused by the version switch; returns how many."""
    cur.execute(
        """
        WITH gone AS (
            DELETE FROM sales.order_lines o
            WHERE o.channel = %(channel)s AND o.account_id = %(account)s AND o.source = ANY(%(old_sources)s)
              AND o.sales_date BETWEEN %(start)s AND %(end)s
            RETURNING o.order_id, o.line_key, o.sales_date, o.payment_amount, o.quantity, o.source)
        INSERT INTO sales.order_line_changes
            (channel, account_id, order_id, line_key, sales_date, change, old_payment_amount, new_payment_amount,
             old_quantity, new_quantity, run_id, cause, cause_facts)
        SELECT %(channel)s, %(account)s, order_id, line_key, sales_date, 'removed', payment_amount, NULL,
               quantity, NULL, %(run_id)s,
               format('%%s line replaced: %%s..%%s collected from %%s in run %%s', source, %(start)s::date,
                      %(end)s::date, array_to_string(%(sources)s::text[], ', '), %(run_id)s::text),
               jsonb_build_array(jsonb_build_object(
                   'kind', 'version switch', 'status', 'superseded', 'document', source, 'fact_key', line_key,
                   'fact_date', sales_date, 'order_id', order_id, 'quantity', -quantity,
                   'amount', -payment_amount, 'run_id', %(run_id)s::text))
        FROM gone
        """, {**who, "old_sources": list(sources)})
    return cur.rowcount


def _write_lines(cur, who: dict[str, Any], *, groups: int, new_lines: int) -> dict[str, int]:
    """Swap the affected groups' lines, restatements and adjustments for the derived ones (``new_lines``,
    ``new_restatements``, ``new_adjustments``), writing one ``order_line_changes`` row per line added,
    changed or removed with the facts of this load that caused it; returns the count of each change.

    A line's causes are the facts of this load that are its own original, that restate it
    (before or after), or that are per-order fees of its group; failing those, every fact of
    this load in its group. ``groups`` and ``new_lines`` are the rows of ``affected`` and ``new_lines``,
    which the caller has counted: they choose between probing and joining the account's lines.
    """
    cur.execute(_OLD_LINES_PROBED if _probes_pay(cur, "sales.order_lines", 2 * groups) else _OLD_LINES_JOINED, who)
    cur.execute("ANALYZE old_lines")
    cur.execute(
        f"""
        CREATE TEMP TABLE line_changes ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY coalesce(n.order_id, o.order_id), coalesce(n.line_key, o.line_key)) AS id,
               coalesce(n.order_id, o.order_id) AS order_id, coalesce(n.line_key, o.line_key) AS line_key,
               CASE WHEN n.order_id IS NULL THEN o.group_key ELSE n.group_key END AS group_key,
               CASE WHEN n.order_id IS NULL THEN o.sales_date ELSE n.sales_date END AS sales_date,
               CASE WHEN o.order_id IS NULL THEN 'added' WHEN n.order_id IS NULL THEN 'removed'
                    ELSE 'changed' END AS change,
               o.payment_amount AS old_payment_amount, n.payment_amount AS new_payment_amount,
               o.quantity AS old_quantity, n.quantity AS new_quantity
        FROM new_lines n FULL JOIN old_lines o ON o.order_id = n.order_id AND o.line_key = n.line_key
        WHERE o.order_id IS NULL OR n.order_id IS NULL OR ({_COMPARED_O}) IS DISTINCT FROM ({_COMPARED_N})
        """)
    cur.execute("ANALYZE line_changes")
    cur.execute(
        """
        CREATE TEMP TABLE line_links ON COMMIT DROP AS
        SELECT r.order_id, r.line_key, r.fact_kind, r.fact_key
        FROM sales.restatements r JOIN affected a USING (group_key)
        WHERE r.channel = %(channel)s AND r.account_id = %(account)s
        UNION SELECT order_id, line_key, fact_kind, fact_key FROM new_restatements
        """, who)
    cur.execute("ANALYZE line_links")
    cur.execute(
        f"""
        INSERT INTO sales.order_line_changes ({_CHANGE_COLS})
        WITH candidates AS (
            SELECT c.id, f.ord, f.fact_kind, f.status, f.document, f.fact_key, f.fact_date, f.order_id, f.option_id,
                   f.quantity, f.amount, {_LABEL_OF_KIND} AS label,
                   (f.order_id = c.order_id AND f.fact_key = c.line_key) OR f.fact_kind = 'jet_order_fee'
                   OR l.fact_key IS NOT NULL AS hit
            FROM line_changes c
            JOIN fact_changes f ON f.group_key = c.group_key
            LEFT JOIN line_links l ON l.order_id = c.order_id AND l.line_key = c.line_key
                                  AND l.fact_kind = f.fact_kind AND l.fact_key = f.fact_key
        ), causes AS (
            SELECT id,
                   string_agg(format('%%s %%s: %%s %%s dated %%s (%%s%%s, %%s%%s won) collected in run %%s',
                                     label, status, document, fact_key, to_char(fact_date, 'YYYY-MM-DD'),
                                     CASE WHEN quantity < 0 THEN '-' ELSE '+' END, abs(quantity),
                                     CASE WHEN amount < 0 THEN '-' ELSE '+' END,
                                     to_char(abs(amount), 'FM9,999,999,999,999,999,990'),
                                     coalesce(%(run_id)s::text, 'None')),
                              '; ' ORDER BY ord NULLS LAST, fact_kind, order_id, fact_key) AS cause,
                   jsonb_agg(jsonb_build_object(
                       'kind', label, 'fact_kind', fact_kind, 'status', status, 'document', document,
                       'fact_key', fact_key, 'fact_date', to_char(fact_date, 'YYYY-MM-DD'), 'order_id', order_id,
                       'option_id', option_id, 'quantity', quantity, 'amount', amount, 'run_id', %(run_id)s::text)
                       ORDER BY ord NULLS LAST, fact_kind, order_id, fact_key) AS cause_facts
            FROM (SELECT *, bool_or(hit) OVER (PARTITION BY id) AS any_hit FROM candidates) m
            WHERE hit OR NOT any_hit
            GROUP BY id)
        SELECT %(channel)s, %(account)s, c.order_id, c.line_key, c.sales_date, c.change, c.old_payment_amount,
               c.new_payment_amount, c.old_quantity, c.new_quantity, %(run_id)s,
               coalesce(k.cause, 're-derived (no fact of this load changed)'), coalesce(k.cause_facts, '[]'::jsonb)
        FROM line_changes c LEFT JOIN causes k USING (id)
        ORDER BY c.id
        """, who)
    swapped = new_lines + cur.execute("SELECT count(*) FROM old_lines").fetchone()[0]
    cur.execute(_LINES_DELETED_PROBED if _probes_pay(cur, "sales.order_lines", swapped) else _LINES_DELETED_JOINED,
                who)
    cur.execute(f"INSERT INTO sales.order_lines ({_LINE_COLS}, run_id) SELECT {_LINE_COLS}, %(run_id)s "
                "FROM new_lines", who)
    cur.execute("DELETE FROM sales.restatements t USING affected a WHERE t.group_key = a.group_key "
                "AND t.channel = %(channel)s AND t.account_id = %(account)s", who)
    cur.execute(f"INSERT INTO sales.restatements (channel, account_id, {_RESTATEMENT_COLS}) "
                f"SELECT %(channel)s, %(account)s, {_RESTATEMENT_COLS} FROM new_restatements", who)
    cur.execute("DELETE FROM sales.restatement_adjustments t USING affected a WHERE t.group_key = a.group_key "
                "AND t.channel = %(channel)s AND t.account_id = %(account)s", who)
    cur.execute(f"INSERT INTO sales.restatement_adjustments (channel, account_id, {_ADJUSTMENT_COLS}) "
                f"SELECT %(channel)s, %(account)s, {_ADJUSTMENT_COLS} FROM new_adjustments", who)
    cur.execute("SELECT change, count(*) FROM line_changes GROUP BY change")
    return dict(cur.fetchall())


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


def warehouse_now(conn: "psycopg.Connection") -> dt.datetime:
    """The warehouse's clock, to find what a load that starts after this call changed."""
    return conn.execute("SELECT clock_timestamp()").fetchone()[0]


def changed_sales_dates(conn: "psycopg.Connection", *, channel: str, account_id: str,
                        since: dt.datetime) -> list[str]:
    """The sales dates (ISO) of the account whose lines a load committed since ``since`` changed."""
    rows = conn.execute("SELECT DISTINCT sales_date FROM sales.order_line_changes WHERE channel = %s "
                        "AND account_id = %s AND changed_at >= %s ORDER BY sales_date",
                        (channel, account_id, since)).fetchall()
    return [day.isoformat() for (day,) in rows]


CURSOR_STREAM = "order_lines"


def collection_cursor(conn: "psycopg.Connection", *, channel: str, account_id: str,
                      stream: str = CURSOR_STREAM) -> dt.date | None:
    """The last date the account's ``stream`` was collected without a gap (``sales.collection_cursors``),
    or None when it was never collected. A successful collection moves it (a trigger on
    ``sales.collection_runs``, migration 0004)."""
    row = conn.execute("SELECT collected_through FROM sales.collection_cursors "
                       "WHERE channel = %s AND account_id = %s AND stream = %s",
                       (channel, account_id, stream)).fetchone()
    return row[0] if row else None


def set_collection_cursor(conn: "psycopg.Connection", *, channel: str, account_id: str, through: dt.date | None,
                          by: str, stream: str = CURSOR_STREAM) -> dt.date | None:
    """Set (or, with ``through=None``, remove) an account's cursor by hand; returns the value it had."""
    with conn.transaction():
        before = collection_cursor(conn, channel=channel, account_id=account_id, stream=stream)
        if through is None:
            conn.execute("DELETE FROM sales.collection_cursors WHERE channel = %s AND account_id = %s "
                         "AND stream = %s", (channel, account_id, stream))
        else:
            conn.execute(
                """
                INSERT INTO sales.collection_cursors (channel, account_id, stream, collected_through, updated_by)
                VALUES (%s, %s, %s, %s, %s)
                ON CONFLICT (channel, account_id, stream) DO UPDATE
                SET collected_through = excluded.collected_through, updated_at = now(),
                    updated_by = excluded.updated_by
                """, (channel, account_id, stream, through, by))
    return before


def active_accounts(conn: "psycopg.Connection", channel: str, shard: tuple[int, int] | None = None,
                    account_id: str | None = None) -> list[dict[str, Any]]:
    """The active accounts of a channel: ids and connection names only, never credentials.

    ``shard=(index, count)`` keeps those whose ``shards.shard_of(account_id, count)`` is ``index``.
    ``account_id``: that one account only, active or not (a person asked for it), or none.
    """
    with conn.cursor() as cur:
        if account_id is not None:
            cur.execute("SELECT account_id, conn_id, jet_version FROM sales.accounts "
                        "WHERE channel = %s AND account_id = %s", (channel, account_id))
        else:
            cur.execute(
                "SELECT account_id, conn_id, jet_version FROM sales.accounts "
                "WHERE channel = %s AND active ORDER BY account_id",
                (channel,),
            )
        rows = cur.fetchall()
    if shard is not None:
        from coupang_sales.shards import shard_of

        index, count = shard
        rows = [row for row in rows if shard_of(row[0], count) == index]
    return [{"channel": channel, "account_id": a, "conn_id": c, "jet_version": v} for a, c, v in rows]


def upsert_account(conn: "psycopg.Connection", *, channel: str, account_id: str, conn_id: str,
                   jet_version: int | None = None, active: bool = True, seller_name: str | None = None) -> None:
    """Register (or change) an account; ``seller_name`` (the portal's 업체명) is kept when not given."""
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO sales.accounts (channel, account_id, conn_id, jet_version, active, seller_name)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (channel, account_id) DO UPDATE
            SET conn_id = excluded.conn_id, jet_version = excluded.jet_version, active = excluded.active,
                seller_name = coalesce(excluded.seller_name, sales.accounts.seller_name)
            """,
            (channel, account_id, conn_id, jet_version, active, seller_name),
        )


def record_run(
    conn: "psycopg.Connection", *, channel: str, account_id: str, window: Window, status: str,
    reason: str | None = None, message: str | None = None, rows_extracted: int | None = None,
    rows_loaded: int | None = None, started_at: dt.datetime | None = None,
    run_id: str | None = None, task_id: str | None = None, try_number: int | None = None,
    details: dict[str, Any] | None = None, dag_id: str | None = None, map_index: int | None = None,
    route: str | None = None, route_wait_seconds: int | None = None,
) -> None:
    """Append one attempt to ``sales.collection_runs`` (committed at once, whatever follows).

    ``dag_id``, ``run_id``, ``task_id``, ``map_index`` and ``try_number`` name the task instance
    that made the attempt: the status page links to its log. ``route`` is the egress route its
    browser left from and ``route_wait_seconds`` how long the run waited for it. A trigger keeps
    ``sales.account_status`` in step in the same transaction.
    """
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO sales.collection_runs
                (channel, account_id, window_start, window_end, status, reason, message,
                 rows_extracted, rows_loaded, started_at, run_id, task_id, try_number, details, dag_id, map_index,
                 route, route_wait_seconds)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (channel, account_id, window.start, window.end, status, reason, message,
             rows_extracted, rows_loaded, started_at, run_id, task_id, try_number,
             json.dumps(details, ensure_ascii=False, default=str) if details else None, dag_id, map_index,
             route, route_wait_seconds),
        )
