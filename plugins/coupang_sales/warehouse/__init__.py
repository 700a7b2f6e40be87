"""PostgreSQL warehouse access: schema migrations, the all-or-nothing window load, and the collection audit."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from coupang_sales.model import ADJUSTMENT_COLUMNS, FACT_COLUMNS, ORDER_LINE_COLUMNS, RESTATEMENT_COLUMNS, Window

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    import psycopg

    from coupang_sales.facts import Derived

FEE_COLUMNS = ("channel", "account_id", "period_start", "period_end", "settlement_group_key", "fee_type", "amount")
CHANGE_COLUMNS = ("channel", "account_id", "order_id", "line_key", "sales_date", "change", "old_payment_amount",
                  "new_payment_amount", "old_quantity", "new_quantity", "run_id", "cause", "cause_facts")
# Column lists of the fact load's statements, built once from the constants above.
_FACT_COLS = ", ".join(FACT_COLUMNS)
_FACT_COLS_F = ", ".join("f." + c for c in FACT_COLUMNS)
_FACT_CONTENT_F = ", ".join("f." + c for c in FACT_COLUMNS if c not in ("fact_kind", "order_id", "fact_key"))
_FACT_CONTENT_I = ", ".join("i." + c for c in FACT_COLUMNS if c not in ("fact_kind", "order_id", "fact_key"))
_FACT_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in FACT_COLUMNS if c not in ("fact_kind", "order_id",
                                                                                   "fact_key"))
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
    """Store one extract's facts and re-derive the order lines of every group they touch, atomically.

    ``facts`` replace the account's stored facts of ``kinds`` that this extract read: those
    dated in ``read_range`` and those of ``documents`` (the invoices read). A fact is keyed by
    its source row, so a fact collected by an earlier run outside that range stays. Then, for
    every group an incoming or removed fact belongs to, the lines are derived from *all* the
    stored facts of the group (``derive``) and replace the group's lines, restatements and
    adjustments: the result is a function of the facts collected so far, never of the
    window or the order of the runs.

    Lines of the account of the ``supersedes`` sources (Jet v1 for a v2 load) dated in
    ``read_range`` are removed: the dates this extract read have one truth, its own, whatever
    version collected them before (docs/decisions.md, "Jet version switches").

    Each added, changed or removed line is written to ``sales.order_line_changes`` with the
    facts of this load that caused it (``cause``, ``cause_facts``). Everything happens in
    one transaction under the account's advisory lock; a failure leaves the warehouse as
    it was.
    """
    import pandas as pd

    from coupang_sales.facts import UNAPPLIED_REASONS, fact_frame

    bad = facts[~facts["fact_kind"].isin(kinds)]
    if len(bad):
        raise ValueError(f"{len(bad)} facts of {channel}/{account_id} are not of the kinds {kinds}")
    outside = facts[[not (read_range.start <= d <= read_range.end) and doc not in documents
                     for d, doc in zip(facts["fact_date"], facts["document"], strict=True)]]
    if len(outside):
        raise ValueError(f"{len(outside)} facts of {channel}/{account_id} lie outside what was read "
                         f"({read_range}), e.g. {outside['fact_date'].iloc[0]}")
    who = {"channel": channel, "account": account_id, "kinds": list(kinds), "start": read_range.start,
           "end": read_range.end, "documents": list(documents), "run_id": run_id, "sources": list(sources)}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (account_lock_key(channel, account_id),))
        cur.execute(f"CREATE TEMP TABLE incoming_facts ON COMMIT DROP AS "
                    f"SELECT {_FACT_COLS} FROM sales.collected_facts WITH NO DATA")
        with cur.copy(f"COPY incoming_facts ({_FACT_COLS}) FROM STDIN") as copy:
            for chunk in _copy_chunks(facts, FACT_COLUMNS):
                copy.write(chunk)
        # What this extract changes: facts new or different, and facts of what was read that are gone.
        cur.execute(
            f"""
            CREATE TEMP TABLE fact_changes ON COMMIT DROP AS
            SELECT i.*, CASE WHEN f.fact_key IS NULL THEN 'new' ELSE 'changed' END AS status
            FROM incoming_facts i
            LEFT JOIN sales.collected_facts f
              ON f.channel = %(channel)s AND f.account_id = %(account)s AND f.fact_kind = i.fact_kind
             AND f.order_id = i.order_id AND f.fact_key = i.fact_key
            WHERE f.fact_key IS NULL OR ({_FACT_CONTENT_F}) IS DISTINCT FROM ({_FACT_CONTENT_I})
            UNION ALL
            SELECT {_FACT_COLS_F}, 'removed'
            FROM sales.collected_facts f
            WHERE f.channel = %(channel)s AND f.account_id = %(account)s AND f.fact_kind = ANY(%(kinds)s)
              AND (f.fact_date BETWEEN %(start)s AND %(end)s OR f.document = ANY(%(documents)s))
              AND NOT EXISTS (SELECT 1 FROM incoming_facts i WHERE i.fact_kind = f.fact_kind
                              AND i.order_id = f.order_id AND i.fact_key = f.fact_key)
            """, who)
        cur.execute(
            """
            DELETE FROM sales.collected_facts f USING fact_changes c
            WHERE c.status = 'removed' AND f.channel = %(channel)s AND f.account_id = %(account)s
              AND f.fact_kind = c.fact_kind AND f.order_id = c.order_id AND f.fact_key = c.fact_key
            """, who)
        cur.execute(
            f"""
            INSERT INTO sales.collected_facts (channel, account_id, {_FACT_COLS}, run_id)
            SELECT %(channel)s, %(account)s, {_FACT_COLS}, %(run_id)s FROM fact_changes WHERE status <> 'removed'
            ON CONFLICT (channel, account_id, fact_kind, order_id, fact_key)
            DO UPDATE SET {_FACT_UPDATES}, run_id = excluded.run_id, collected_at = now()
            """, who)
        cur.execute("CREATE TEMP TABLE affected ON COMMIT DROP AS "
                    "SELECT group_key FROM incoming_facts UNION SELECT group_key FROM fact_changes")
        cur.execute(
            f"""
            SELECT {_FACT_COLS_F}
            FROM sales.collected_facts f JOIN affected a USING (group_key)
            WHERE f.channel = %(channel)s AND f.account_id = %(account)s AND f.fact_kind = ANY(%(kinds)s)
            ORDER BY f.group_key, f.fact_kind, f.order_id, f.fact_key
            """, who)
        stored = fact_frame(pd.DataFrame(cur.fetchall(), columns=list(FACT_COLUMNS)))
        cur.execute(f"SELECT {_FACT_COLS}, status FROM fact_changes")
        changed_facts = pd.DataFrame(cur.fetchall(), columns=[*FACT_COLUMNS, "status"])
        cur.execute("SELECT count(*) FROM affected")
        groups = cur.fetchone()[0]

        derived = derive(stored)
        new_lines = derived.order_lines
        bad = new_lines[(new_lines["channel"] != channel) | (new_lines["account_id"] != account_id)]
        if len(bad):
            raise ValueError(f"{len(bad)} derived rows do not belong to {channel}/{account_id}")

        # The lines these groups had (a group is a Jet 주문ID or a Rocket 발주번호/SKU번호), whatever their key
        # layout: rows of an older layout of the same orders are replaced too.
        cur.execute(
            f"""
            SELECT {_LINE_COLS_O},
                   CASE WHEN o.order_id IN (SELECT group_key FROM affected) THEN o.order_id
                        ELSE o.order_id || '/' || coalesce(o.option_id, '') END
            FROM sales.order_lines o
            WHERE o.channel = %(channel)s AND o.account_id = %(account)s AND o.source = ANY(%(sources)s)
              AND (o.order_id IN (SELECT group_key FROM affected)
                   OR o.order_id || '/' || coalesce(o.option_id, '') IN (SELECT group_key FROM affected))
            """, who)
        old_lines = pd.DataFrame(cur.fetchall(), columns=[*ORDER_LINE_COLUMNS, "group_key"])
        cur.execute("SELECT r.order_id, r.line_key, r.fact_kind, r.fact_key FROM sales.restatements r "
                    "JOIN affected a USING (group_key) WHERE r.channel = %(channel)s AND r.account_id = %(account)s",
                    who)
        old_links = cur.fetchall()
        changes = _line_changes(old_lines, new_lines, changed_facts, derived.restatements, old_links,
                                channel=channel, account_id=account_id, run_id=run_id)
        new_keyed = {(o, k) for o, k in zip(new_lines["order_id"], new_lines["line_key"], strict=True)}
        clash = [(o, k) for o, k in new_keyed]
        cur.execute("CREATE TEMP TABLE line_keys (order_id text, line_key text) ON COMMIT DROP")
        with cur.copy("COPY line_keys (order_id, line_key) FROM STDIN") as copy:
            for order_id, line_key in clash + list(zip(old_lines["order_id"], old_lines["line_key"], strict=True)):
                copy.write_row((order_id, line_key))
        cur.execute(
            """
            DELETE FROM sales.order_lines o USING line_keys k
            WHERE o.channel = %(channel)s AND o.account_id = %(account)s
              AND o.order_id = k.order_id AND o.line_key = k.line_key
            """, who)
        with cur.copy(f"COPY sales.order_lines ({_LINE_COLS}, run_id) FROM STDIN") as copy:
            for chunk in _copy_chunks(new_lines.assign(run_id=run_id), (*ORDER_LINE_COLUMNS, "run_id")):
                copy.write(chunk)
        cur.execute("DELETE FROM sales.restatements t USING affected a WHERE t.group_key = a.group_key "
                    "AND t.channel = %(channel)s AND t.account_id = %(account)s", who)
        with cur.copy(f"COPY sales.restatements (channel, account_id, {_RESTATEMENT_COLS}) FROM STDIN") as copy:
            for chunk in _copy_chunks(derived.restatements.assign(channel=channel, account_id=account_id),
                                      ("channel", "account_id", *RESTATEMENT_COLUMNS)):
                copy.write(chunk)
        cur.execute("DELETE FROM sales.restatement_adjustments t USING affected a WHERE t.group_key = a.group_key "
                    "AND t.channel = %(channel)s AND t.account_id = %(account)s", who)
        with cur.copy(f"COPY sales.restatement_adjustments (channel, account_id, {_ADJUSTMENT_COLS}) "
                      "FROM STDIN") as copy:
            for chunk in _copy_chunks(derived.adjustments.assign(channel=channel, account_id=account_id),
                                      ("channel", "account_id", *ADJUSTMENT_COLUMNS)):
                copy.write(chunk)
        with cur.copy(f"COPY sales.order_line_changes ({_CHANGE_COLS}) FROM STDIN") as copy:
            for chunk in _copy_chunks(changes, CHANGE_COLUMNS):
                copy.write(chunk)
        superseded = _supersede(cur, who, supersedes) if supersedes else 0
        if account_fees is not None:
            _replace_fees(cur, channel=channel, account_id=account_id, periods=list(fee_periods or []),
                          fees=account_fees, run_id=run_id)
    adjustments = derived.adjustments
    unapplied = adjustments[adjustments["reason"].isin(UNAPPLIED_REASONS)]
    kinds_of = changes["change"].tolist()
    return FactLoadResult(
        rows_loaded=len(new_lines), added=kinds_of.count("added"), changed=kinds_of.count("changed"),
        removed=kinds_of.count("removed") + superseded, superseded=superseded,
        facts_new=int((changed_facts["status"] == "new").sum()),
        facts_changed=int((changed_facts["status"] == "changed").sum()),
        facts_removed=int((changed_facts["status"] == "removed").sum()), groups=int(groups),
        unapplied=tuple({"kind": _FACT_LABELS.get(u.fact_kind, u.fact_kind), "order_id": u.order_id,
                         "option_id": u.option_id, "document": u.document, "fact_date": u.fact_date.isoformat(),
                         "reason": u.reason, "quantity": int(u.quantity), "amount": int(u.amount),
                         "seller_shipping_fee": int(u.seller_shipping_fee)}
                        for u in unapplied.itertuples()),
        price_difference=int(adjustments.loc[adjustments["reason"] == "price_difference", "amount"].sum()),
    )


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


def _line_changes(old: "pd.DataFrame", new: "pd.DataFrame", changed_facts: "pd.DataFrame",
                  new_links: "pd.DataFrame", old_links: list[tuple], *, channel: str, account_id: str,
                  run_id: str | None) -> "pd.DataFrame":
    """One ``order_line_changes`` row per line added, changed or removed, naming the facts that caused it.

    A line's causes are the facts of this load that are its own original, that restate it
    (before or after), or that are per-order fees of its group; failing those, every fact of
    this load in its group.
    """
    import pandas as pd

    def same(a, b) -> bool:
        return (pd.isna(a) and pd.isna(b)) or (not pd.isna(a) and not pd.isna(b) and a == b)

    old_by_key = {(r["order_id"], r["line_key"]): r for r in old.to_dict("records")}
    new_by_key = {(r["order_id"], r["line_key"]): r for r in new.to_dict("records")}
    links: dict[tuple, set] = {}
    for o, k, kind, fact in [*old_links, *zip(new_links["order_id"], new_links["line_key"], new_links["fact_kind"],
                                              new_links["fact_key"], strict=True)]:
        links.setdefault((o, k), set()).add((kind, fact))
    by_group: dict[str, list[dict]] = {}
    for fact in changed_facts.to_dict("records"):
        by_group.setdefault(fact["group_key"], []).append(fact)
    rows = []
    for key in sorted(set(old_by_key) | set(new_by_key)):
        before, after = old_by_key.get(key), new_by_key.get(key)
        if before is not None and after is not None and all(same(before[c], after[c]) for c in _COMPARED):
            continue
        line = after if after is not None else before
        group = line.get("group_key") if after is not None else (before.get("group_key") or
                                                                 (after or {}).get("group_key"))
        candidates = by_group.get(group, []) if group else [f for g in by_group.values() for f in g
                                                            if f["order_id"] == key[0]]
        linked = links.get(key, set())
        causes = [f for f in candidates
                  if (f["order_id"], f["fact_key"]) == key or (f["fact_kind"], f["fact_key"]) in linked
                  or f["fact_kind"] == "jet_order_fee"
                  or (f["fact_kind"] == "jet_settlement" and f["order_id"] == key[0]
                      and key[1] == f["fact_key"])] or candidates
        cause_facts = [{"kind": _FACT_LABELS.get(f["fact_kind"], f["fact_kind"]), "fact_kind": f["fact_kind"],
                        "status": f["status"], "document": f["document"], "fact_key": f["fact_key"],
                        "fact_date": f["fact_date"].isoformat(), "order_id": f["order_id"],
                        "option_id": None if pd.isna(f["option_id"]) else f["option_id"],
                        "quantity": int(f["quantity"]), "amount": int(f["amount"]),
                        "run_id": run_id} for f in causes]
        cause = "; ".join(f"{c['kind']} {c['status']}: {c['document']} {c['fact_key']} dated {c['fact_date']} "
                          f"({c['quantity']:+d}, {c['amount']:+,} won) collected in run {run_id}"
                          for c in cause_facts) or "re-derived (no fact of this load changed)"
        rows.append({"channel": channel, "account_id": account_id, "order_id": key[0], "line_key": key[1],
                     "sales_date": line["sales_date"],
                     "change": "added" if before is None else "removed" if after is None else "changed",
                     "old_payment_amount": None if before is None else int(before["payment_amount"]),
                     "new_payment_amount": None if after is None else int(after["payment_amount"]),
                     "old_quantity": None if before is None else int(before["quantity"]),
                     "new_quantity": None if after is None else int(after["quantity"]),
                     "run_id": run_id, "cause": cause,
                     "cause_facts": json.dumps(cause_facts, ensure_ascii=False)})
    frame = pd.DataFrame(rows, columns=["channel", "account_id", "order_id", "line_key", "sales_date", "change",
                                        "old_payment_amount", "new_payment_amount", "old_quantity", "new_quantity",
                                        "run_id", "cause", "cause_facts"])
    for name in ("old_payment_amount", "new_payment_amount", "old_quantity", "new_quantity"):
        frame[name] = frame[name].astype("Int64")
    for name in ("channel", "account_id", "order_id", "line_key", "change", "run_id", "cause", "cause_facts"):
        frame[name] = frame[name].astype(object)
    frame["sales_date"] = frame["sales_date"].astype(object)
    return frame


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


def active_accounts(conn: "psycopg.Connection", channel: str,
                    shard: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """The active accounts of a channel: ids and connection names only, never credentials.

    ``shard=(index, count)`` keeps those whose ``shards.shard_of(account_id, count)`` is ``index``.
    """
    with conn.cursor() as cur:
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
    details: dict[str, Any] | None = None, dag_id: str | None = None, map_index: int | None = None,
) -> None:
    """Append one attempt to ``sales.collection_runs`` (committed at once, whatever follows).

    ``dag_id``, ``run_id``, ``task_id``, ``map_index`` and ``try_number`` name the task instance
    that made the attempt: the status page links to its log. A trigger keeps
    ``sales.account_status`` in step in the same transaction.
    """
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO sales.collection_runs
                (channel, account_id, window_start, window_end, status, reason, message,
                 rows_extracted, rows_loaded, started_at, run_id, task_id, try_number, details, dag_id, map_index)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (channel, account_id, window.start, window.end, status, reason, message,
             rows_extracted, rows_loaded, started_at, run_id, task_id, try_number,
             json.dumps(details, ensure_ascii=False, default=str) if details else None, dag_id, map_index),
        )
