"""The four Coupang Rocket stages over a staging folder: extract, validate, transform, load.

Each stage reads what the previous one staged and returns a small JSON-safe summary
(paths and counts only), which is all that goes to XCom. Staged frames are pickles
written and read only by these stages, with the same code version.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coupang_sales.errors import CollectionError, ExportFormatError
from coupang_sales.model import ROCKET, Window, dated_within

if TYPE_CHECKING:
    import psycopg

    from coupang_sales.rocket.supplier_hub import SupplierHubSession

INVOICES_FILE = "invoices.json"
DETAIL_GLOB = "receive_detail_*.xlsx"
DETAIL_PAGES_GLOB = "receive_detail_*.json"  # 입고상세내역 read from its pages: {"headers", "rows"}
ALIASES_FILE = "column_aliases.json"  # the portal settings' column aliases, for validate


def extract(session: "SupplierHubSession", *, account: Mapping[str, Any], window: Window,
            list_until: dt.date, staging: Path) -> dict[str, Any]:
    """List the invoices written in [window.start, list_until] and stage each 입고상세내역: its
    export (``receive_detail_{no}.xlsx``) or, with the setting ``receive_detail_source``
    'pages', the lines read from its pages (``receive_detail_{no}.json``).

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
    source = getattr(session, "receive_detail_source", "export")
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
    for invoice_no in invoices["invoice_no"]:
        path = staging / f"receive_detail_{invoice_no}.xlsx"
        pages = staging / f"receive_detail_{invoice_no}.json"
        if pages.exists():
            lines = json.loads(pages.read_text(encoding="utf-8"))
            raw_frames.append(rocket.receive_detail_frame(lines["headers"], lines["rows"], aliases=aliases,
                                                          source=f"입고상세내역 {invoice_no} (pages)"))
        elif path.exists():
            raw_frames.append(rocket.read_receive_detail_export(path, aliases=aliases,
                                                                source=f"입고상세내역 {invoice_no}.xlsx"))
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
    deduped = rocket.drop_duplicate_lines(lines)

    result = run_checks("coupang_rocket", rocket_checks(
        invoices, deduped.lines, first_day=window.start, last_day=list_until))
    (staging / "quality_result.json").write_text(result.to_json(), encoding="utf-8")
    if not result.success:
        raise CollectionError(
            "validation_failed",
            f"{len(result.failures)} expectation(s) failed: " + "; ".join(result.failures)
            + f". Full result: {staging / 'quality_result.json'}")
    invoices.to_pickle(staging / "invoices.pkl")
    deduped.lines.to_pickle(staging / "lines.pkl")
    return {"rows_extracted": len(lines), "duplicates_removed": deduped.duplicates_removed,
            "invoices": len(invoices)}


def transform(*, staging: Path, account: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the Rocket policy to the validated lines."""
    import pandas as pd

    from coupang_sales.rocket import policy as rocket

    result = rocket.transform(pd.read_pickle(staging / "invoices.pkl"), pd.read_pickle(staging / "lines.pkl"),
                              account_id=account["account_id"])
    result.order_lines.to_pickle(staging / "order_lines.pkl")
    result.unmatched_returns.to_csv(staging / "unmatched_returns.csv", index=False)
    return {"order_lines": len(result.order_lines),
            "unmatched_returns": len(result.unmatched_returns),
            "unmatched_return_amount": int(result.unmatched_returns["unmatched_amount"].sum())}


def load(conn: "psycopg.Connection", *, staging: Path, account: Mapping[str, Any], window: Window,
         run_id: str | None) -> dict[str, Any]:
    """Replace the window's rows of the account in one transaction.

    Lines dated after the window (from invoices read only for their 반출 lines) belong to
    later runs and are not loaded here.
    """
    import pandas as pd

    from coupang_sales.warehouse import replace_window

    lines = pd.read_pickle(staging / "order_lines.pkl")
    in_window = dated_within(lines, "sales_date", window)
    result = replace_window(conn, channel=ROCKET, account_id=account["account_id"], window=window,
                            lines=in_window, run_id=run_id)
    return {**result.as_dict(), "payment_amount": int(in_window["payment_amount"].sum())}
