"""The four Coupang Rocket stages over a staging folder: extract, validate, transform, load.

Each stage reads what the previous one staged and returns a small JSON-safe summary
(paths and counts only), which is all that goes to XCom. Staged frames are Parquet files
(``coupang_sales.frames``): validate writes the typed frames transform reads.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coupang_sales.errors import CollectionError, ExportFormatError
from coupang_sales.frames import chunk_file, clear_chunks, read_frame, write_frame
from coupang_sales.model import ROCKET, Window
from coupang_sales.plan import LoadSummary, RunPlan, StageSummary

if TYPE_CHECKING:
    import psycopg

    from coupang_sales.rocket.supplier_hub import SupplierHubSession

INVOICES_FILE = "invoices.json"
DETAIL_GLOB = "receive_detail_*.xlsx"
DETAIL_PAGES_GLOB = "receive_detail_*.json"  # 입고상세내역 read from its pages: {"headers", "rows"}
ALIASES_FILE = "column_aliases.json"  # the portal settings' column aliases, for validate
INVOICES_FRAME = "invoices.parquet"  # validate -> transform, load: the typed invoices
LINES_FRAME = "lines.parquet"  # validate -> transform: the typed, de-duplicated 입고상세내역 lines
FACTS_FRAME = "facts.parquet"  # transform -> load
ORDER_LINES_FRAME = "order_lines.parquet"  # load: the lines it derived, for reading after it
POLICY_RESULT_FILE = "quality_policy_result.json"  # load: the policy suite's result over those lines


def extract(session: "SupplierHubSession", *, account: Mapping[str, Any], window: Window,
            list_until: dt.date, staging: Path) -> dict[str, Any]:
    """List the invoices written in [window.start, list_until] and stage each 입고상세내역: the
    lines read from its HTML pages (``receive_detail_{no}.json``; the setting
    ``receive_detail_source`` 'pages', the default, as the peer that reads the live site does) or,
    with 'export', its export (``receive_detail_{no}.xlsx``).

    Invoices after the window are read too (``list_until``): their 반출 lines restate
    lines inside the window, so re-running an old date gives the same rows as the day
    it first ran plus every later cancellation.
    """
    staging.mkdir(parents=True, exist_ok=True)
    for old in [*staging.glob(DETAIL_GLOB), *staging.glob(DETAIL_PAGES_GLOB)]:
        old.unlink()  # a retry starts from a clean folder: never mix two attempts' files
    settings = getattr(session, "settings", None)
    aliases = settings.aliases() if settings is not None else {}
    (staging / ALIASES_FILE).write_text(json.dumps(aliases, ensure_ascii=False), encoding="utf-8")
    session.login()
    invoices = session.list_invoices(window.start, list_until)
    (staging / INVOICES_FILE).write_text(json.dumps(invoices, ensure_ascii=False), encoding="utf-8")
    numbers = []
    for row in invoices:
        invoice_no = str(row.get("계산서번호", "")).strip()
        if not invoice_no:
            raise ExportFormatError(f"일반매입계정: a row has no 계산서번호: {sorted(row)}")
        numbers.append(invoice_no)
    source = getattr(session, "receive_detail_source", "pages")
    if source == "pages":
        for invoice_no, lines in session.read_receive_detail_pages(numbers).items():
            target = staging / f"receive_detail_{invoice_no}.json"
            partial = target.with_name(target.name + ".part")
            partial.write_text(json.dumps(lines, ensure_ascii=False), encoding="utf-8")
            partial.replace(target)
    else:
        for invoice_no, path in zip(numbers, session.download_receive_details(numbers), strict=True):
            target = staging / f"receive_detail_{invoice_no}.xlsx"
            if path != target:
                path.replace(target)
    return {"invoices": len(invoices), "list_until": list_until.isoformat(), "receive_detail_source": source,
            "session_renewals": int(getattr(session, "renewals", 0))}


def validate(*, staging: Path, account: Mapping[str, Any], window: Window, list_until: dt.date) -> dict[str, Any]:
    """Parse the staged files by header name, drop verbatim duplicates and run the GX suite.

    A failed expectation raises ``validation_failed`` with the failures in the message;
    the full result is kept as ``quality_result.json`` in the staging folder.
    """
    import numpy as np
    import pandas as pd

    from coupang_sales.quality import run_checks
    from coupang_sales.rocket import policy as rocket
    from coupang_sales.rocket.quality import rocket_checks

    rows = json.loads((staging / INVOICES_FILE).read_text(encoding="utf-8"))
    invoices = rocket.parse_invoices(rows)
    aliases_file = staging / ALIASES_FILE
    aliases = json.loads(aliases_file.read_text(encoding="utf-8")) if aliases_file.exists() else {}
    raw_frames = []
    exported = [n for n in invoices["invoice_no"] if not (staging / f"receive_detail_{n}.json").exists()
                and (staging / f"receive_detail_{n}.xlsx").exists()]  # decoded at once, in parallel where allowed
    decoded = dict(zip(exported, rocket.read_receive_detail_exports(
        [staging / f"receive_detail_{n}.xlsx" for n in exported], aliases=aliases,
        sources=[f"입고상세내역 {n}.xlsx" for n in exported]), strict=True))
    for invoice_no in invoices["invoice_no"]:
        path = staging / f"receive_detail_{invoice_no}.xlsx"
        pages = staging / f"receive_detail_{invoice_no}.json"
        if pages.exists():
            lines = json.loads(pages.read_text(encoding="utf-8"))
            raw_frames.append(rocket.receive_detail_frame(lines["headers"], lines["rows"], aliases=aliases,
                                                          source=f"입고상세내역 {invoice_no} (pages)"))
        elif path.exists():
            raw_frames.append(decoded[invoice_no])
        else:
            raise CollectionError("portal_unavailable", f"입고상세내역 of invoice {invoice_no} was not downloaded")
    # All files are typed at once (per-file pandas work costs more than the parsing itself
    # at a thousand invoices); only when that fails are they typed one by one, so the
    # error names the file and its row.
    combined = (pd.concat(raw_frames, ignore_index=True) if raw_frames
                else pd.DataFrame(columns=list(rocket.DETAIL_COLUMNS)))
    try:
        lines = rocket.parse_receive_detail(combined, source="입고상세내역")
    except ExportFormatError:
        for invoice_no, frame in zip(invoices["invoice_no"], raw_frames, strict=True):
            rocket.parse_receive_detail(frame, source=f"입고상세내역 {invoice_no}")
        raise
    file_of_line = np.repeat(invoices["invoice_no"].to_numpy(dtype=object), [len(f) for f in raw_frames])
    del combined, raw_frames
    stray = lines["invoice_no"].to_numpy(dtype=object) != file_of_line
    if stray.any():
        first = int(np.flatnonzero(stray)[0])
        others = sorted(set(lines["invoice_no"][stray & (file_of_line == file_of_line[first])]))
        raise ExportFormatError(f"입고상세내역 of invoice {file_of_line[first]} holds lines of invoices {others}")
    deduped = rocket.drop_duplicate_lines(lines, invoices)

    result = run_checks("coupang_rocket", rocket_checks(
        invoices, deduped.lines, first_day=window.start, last_day=list_until))
    (staging / "quality_result.json").write_text(result.to_json(), encoding="utf-8")
    if not result.success:
        mismatches = rocket.invoice_mismatches(invoices, deduped.lines)
        raise CollectionError(
            "validation_failed",
            f"{len(result.failures)} expectation(s) failed: " + "; ".join(result.failures)
            + ("; " + "; ".join(mismatches) if mismatches else "")
            + f". Full result: {staging / 'quality_result.json'}")
    write_frame(invoices, staging / INVOICES_FRAME)
    write_frame(deduped.lines, staging / LINES_FRAME)
    return {"rows_extracted": len(lines), "duplicates_removed": deduped.duplicates_removed,
            "invoices": len(invoices),
            **({"repeats_kept": deduped.kept_repeats} if deduped.kept_repeats else {})}


def transform(*, staging: Path, account: Mapping[str, Any]) -> dict[str, Any]:
    """Turn the validated lines into facts (one per receipt and per 반출 line).

    The order lines themselves are derived in the load, from these facts and every fact
    collected before (``coupang_sales.rocket.policy.derive``).
    """
    from coupang_sales.rocket import policy as rocket

    facts = rocket.facts(read_frame(staging / INVOICES_FRAME), read_frame(staging / LINES_FRAME),
                         text_as_objects=False)
    write_frame(facts, staging / FACTS_FRAME)
    returns = int((facts["fact_kind"] == rocket.RETURN_FACT).sum())
    return {"facts": len(facts), "order_lines": len(facts) - returns, "returns": returns,
            "invoices_read": int(facts["document"].nunique())}


def load(conn: "psycopg.Connection", *, staging: Path, account: Mapping[str, Any], window: Window,
         run_id: str | None, list_until: dt.date | None = None) -> dict[str, Any]:
    """Store the facts of the invoices read and re-derive every line they touch, in one transaction.

    What was read is the invoices written in [window.start, list_until] (``list_until``
    defaults to the window's end): their facts replace what was stored for them. Lines
    derive from all facts of their 발주번호/SKU번호, whatever run collected each, and the
    derived lines are checked by the Rocket policy suite before the transaction commits.
    """
    from coupang_sales.rocket import policy as rocket
    from coupang_sales.warehouse import load_facts

    facts = read_frame(staging / FACTS_FRAME)
    invoices = read_frame(staging / INVOICES_FRAME)
    read = Window(window.start, max(window.end, list_until or window.end))
    clear_chunks(staging, ORDER_LINES_FRAME, POLICY_RESULT_FILE)  # an earlier try's chunks are not this load's
    chunks = itertools.count()
    result = load_facts(conn, channel=ROCKET, account_id=account["account_id"], facts=facts,
                        kinds=rocket.ROCKET_FACT_KINDS, read_range=read,
                        documents=tuple(invoices["invoice_no"]), sources=("rocket",), run_id=run_id,
                        derive=lambda stored: checked_derivation(stored, account_id=account["account_id"],
                                                                 staging=staging, chunk=next(chunks)))
    # Σ 총단가 of the invoices read, returns included: their 지급예정금액.
    return {**result.as_dict(), "payment_amount": int(facts["amount"].sum()),
            "return_amount": int(facts.loc[facts["fact_kind"] == rocket.RETURN_FACT, "amount"].sum())}


def checked_derivation(stored, *, account_id: str, staging: Path, chunk: int = 0):
    """``policy.derive`` of the stored facts of one derivation chunk, with the Rocket policy suite run
    over its result; the lines and the suite's result are staged per chunk (``chunk_file``)."""
    from coupang_sales.quality import run_checks
    from coupang_sales.rocket import policy as rocket
    from coupang_sales.rocket.quality import rocket_policy_checks

    derived = rocket.derive(stored, account_id=account_id)
    write_frame(derived.order_lines, staging / chunk_file(ORDER_LINES_FRAME, chunk))
    result = run_checks("coupang_rocket_policy", rocket_policy_checks(stored, derived))
    result_file = staging / chunk_file(POLICY_RESULT_FILE, chunk)
    result_file.write_text(result.to_json(), encoding="utf-8")
    if not result.success:
        raise CollectionError("validation_failed", f"{len(result.failures)} policy expectation(s) failed: "
                              + "; ".join(result.failures) + f". Full result: {result_file}")
    return derived


class ExtractSummary(StageSummary):
    invoices: int                 # 일반매입계정 invoices listed in the read range
    receive_detail_source: str    # 'pages' or 'export'
    session_renewals: int


class ValidateSummary(StageSummary):
    rows_extracted: int
    duplicates_removed: int
    invoices: int
    repeats_kept: int | None = None


class TransformSummary(StageSummary):
    facts: int
    order_lines: int
    returns: int
    invoices_read: int


class RocketStages:
    """The Rocket stages of ``Stages`` (``coupang_sales.channel``) over a run plan."""

    reads_after_window = True

    def extract(self, session: "SupplierHubSession", plan: RunPlan, staging: Path) -> ExtractSummary:
        summary = extract(session, account=plan.account.model_dump(), window=plan.window,
                          list_until=plan.list_until, staging=staging)
        summary.pop("list_until")  # the plan's
        return ExtractSummary(**summary)

    def validate(self, plan: RunPlan, staging: Path) -> ValidateSummary:
        return ValidateSummary(**validate(staging=staging, account=plan.account.model_dump(), window=plan.window,
                                          list_until=plan.list_until))

    def transform(self, plan: RunPlan, staging: Path) -> TransformSummary:
        return TransformSummary(**transform(staging=staging, account=plan.account.model_dump()))

    def load(self, conn: "psycopg.Connection", plan: RunPlan, staging: Path, *, run_id: str | None) -> LoadSummary:
        return LoadSummary(**load(conn, staging=staging, account=plan.account.model_dump(), window=plan.window,
                                  run_id=run_id, list_until=plan.list_until))


STAGES = RocketStages()
