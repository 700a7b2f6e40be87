"""The four Coupang Jet stages over a staging folder, per integration version (1: sales page, 2: reports)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coupang_sales.errors import CollectionError
from coupang_sales.frames import read_frame, write_frame
from coupang_sales.model import JET, Window, dated_within

if TYPE_CHECKING:
    import psycopg

    from coupang_sales.jet.wing import WingSession

V1_FILE = "v1_sales.json"
REPORTS = ("CATEGORY_TR", "WAREHOUSING_SHIPPING")
RANGE_FILE = "collected_range.json"  # the 매출인식일 range whose report rows are kept
FEE_PERIODS_FILE = "fee_periods.json"
GROUPS_FILE = "settlement_groups.json"
# Parquet frames: validate writes the typed rows transform reads (the exports are parsed once)
V1_FRAME = "v1_rows.parquet"
REPORT_FRAMES = {"CATEGORY_TR": "category_tr.parquet", "WAREHOUSING_SHIPPING": "warehousing_shipping.parquet"}
FACTS_FRAME = "facts.parquet"
ORDER_LINES_FRAME = "order_lines.parquet"
ACCOUNT_FEES_FRAME = "account_fees.parquet"


def _check(version: int) -> int:
    if version not in (1, 2):
        raise CollectionError("configuration_error", f"sales.accounts.jet_version must be 1 or 2, not {version!r}")
    return version


def extract(session: "WingSession", *, account: Mapping[str, Any], window: Window, list_until: dt.date,
            staging: Path) -> dict[str, Any]:
    """v1: 판매분석 of each day of the window. v2: both reports of every settlement group overlapping
    [window.start, list_until] (cancellations and fee reversals dated after the window restate lines
    inside it), each group once, with the groups' totals."""
    version = _check(account["jet_version"])
    staging.mkdir(parents=True, exist_ok=True)
    for old in staging.iterdir():
        if old.is_file():
            old.unlink()  # a retry starts clean: never mix two attempts' files
    session.login()
    if version == 1:
        data = session.v1_sales(window.start, window.end)
        (staging / V1_FILE).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return {"version": 1, "list_until": window.end.isoformat(),
                "source_rows": sum(len(day["items"]) for day in data["days"])}
    collected = session.settlement_reports(window.start, list_until, staging, REPORTS)
    (staging / RANGE_FILE).write_text(json.dumps({"first_day": window.start.isoformat(),
                                                  "last_day": list_until.isoformat()}), encoding="utf-8")
    return {"version": 2, "list_until": list_until.isoformat(), "settlement_groups": len(collected.groups),
            "report_files": sum(len(files) for files in collected.files.values())}


def _report_files(staging: Path, report: str) -> list[Path]:
    return sorted(staging.glob(f"{report}__*.xlsx"))


def _raw(staging: Path, version: int):
    """v1: the 판매분석 rows. v2: the rows of both reports (every group, every sheet) whose 매출인식일 is in
    the collected range, and the settlement groups."""
    from coupang_sales.jet import reports
    from coupang_sales.jet import v1 as v1_rows

    if version == 1:
        return (v1_rows.sales_rows(json.loads((staging / V1_FILE).read_text(encoding="utf-8"))),)
    kept = json.loads((staging / RANGE_FILE).read_text(encoding="utf-8"))
    first, last = dt.date.fromisoformat(kept["first_day"]), dt.date.fromisoformat(kept["last_day"])
    frames = tuple(reports.recognised_within(reports.read_reports(_report_files(staging, report), report),
                                             first, last, source=report) for report in REPORTS)
    groups = json.loads((staging / GROUPS_FILE).read_text(encoding="utf-8"))
    return (*frames, groups)


def _run_suite(name: str, checks, staging: Path) -> None:
    from coupang_sales.quality import run_checks

    result = run_checks(name, checks)
    path = staging / f"quality_{name}.json"
    path.write_text(result.to_json(), encoding="utf-8")
    if not result.success:
        raise CollectionError("validation_failed", f"{len(result.failures)} expectation(s) failed: "
                              + "; ".join(result.failures) + f". Full result: {path}")


def validate(*, staging: Path, account: Mapping[str, Any], window: Window, list_until: dt.date) -> dict[str, Any]:
    """Read the staged rows by header name and check them with the raw GX suite of the version."""
    from coupang_sales.jet import quality as suites

    version = _check(account["jet_version"])
    for old in [staging / V1_FRAME, *(staging / name for name in REPORT_FRAMES.values())]:
        old.unlink(missing_ok=True)  # transform reads only what this validation passed
    raw = _raw(staging, version)
    if version == 1:
        _run_suite("coupang_jet_v1_raw", suites.v1_raw_checks(raw[0], first_day=window.start,
                                                                last_day=window.end), staging)
        write_frame(raw[0], staging / V1_FRAME)
        return {"rows_extracted": len(raw[0])}
    category_tr, warehousing, groups = raw
    files = {report: [p.name for p in _report_files(staging, report)] for report in REPORTS}
    _run_suite("coupang_jet_v2_raw", suites.v2_raw_checks(category_tr, warehousing, groups, files,
                                                            first_day=window.start, last_day=list_until), staging)
    write_frame(category_tr, staging / REPORT_FRAMES["CATEGORY_TR"])
    write_frame(warehousing, staging / REPORT_FRAMES["WAREHOUSING_SHIPPING"])
    return {"rows_extracted": len(category_tr) + len(warehousing)}


def _validated(staging: Path, version: int):
    """What validate parsed and checked: the typed frames (and the v2 settlement groups)."""
    if version == 1:
        return (read_frame(staging / V1_FRAME),)
    groups = json.loads((staging / GROUPS_FILE).read_text(encoding="utf-8"))
    return (*(read_frame(staging / REPORT_FRAMES[report]) for report in REPORTS), groups)


def transform(*, staging: Path, account: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the policy of the version, then check its output with the policy GX suite."""
    import pandas as pd

    from coupang_sales.errors import ExportFormatError
    from coupang_sales.jet import fees as account_level
    from coupang_sales.jet import policy as jet
    from coupang_sales.jet import quality as suites

    version, account_id = _check(account["jet_version"]), account["account_id"]
    raw = _validated(staging, version)
    periods: list = []
    if version == 1:
        lines = jet.transform_v1(raw[0], account_id=account_id)
        fees = pd.DataFrame(columns=list(account_level.ACCOUNT_FEE_COLUMNS))
        unmatched = {"unmatched_cancellations": 0, "unmatched_fees": 0}
        _run_suite("coupang_jet_v1_policy", suites.v1_policy_checks(lines), staging)
    else:
        groups = raw[2]
        result = jet.transform_v2(raw[0], raw[1], account_id=account_id)
        if len(result.account_fees):
            # The real WAREHOUSING_SHIPPING has only per-order rows; account-level fees are group totals.
            raise ExportFormatError(f"WAREHOUSING_SHIPPING: {len(result.account_fees)} row(s) without 주문ID "
                                    f"(거래유형 {sorted(set(result.account_fees['fee_type']))}); the report should "
                                    "hold per-order fees only")
        lines = result.order_lines
        fees = account_level.account_fees(groups, account_id=account_id)
        periods = [(s.isoformat(), e.isoformat()) for s, e in account_level.periods(groups)]
        # What this extract gives alone; the load derives from these facts and all earlier ones.
        unmatched = {"facts": len(result.facts)}
        matched_fees = jet.order_fee_totals(raw[1])
        matched_fees = matched_fees[matched_fees.index.isin(set(lines["order_id"]))]
        _run_suite("coupang_jet_v2_policy", suites.v2_policy_checks(lines, matched_fees), staging)
        write_frame(result.facts, staging / FACTS_FRAME)
    write_frame(lines, staging / ORDER_LINES_FRAME)
    write_frame(fees, staging / ACCOUNT_FEES_FRAME)
    (staging / FEE_PERIODS_FILE).write_text(json.dumps(periods), encoding="utf-8")
    return {"order_lines": len(lines), "account_fee_rows": len(fees), **unmatched}


def load(conn: "psycopg.Connection", *, staging: Path, account: Mapping[str, Any], window: Window,
         run_id: str | None, list_until: dt.date | None = None) -> dict[str, Any]:
    """v1: replace the window's order lines. v2: store the report rows read for [window.start,
    list_until] as facts and re-derive every order they touch (each line from all facts of its
    order, whatever run collected them); the account's v1 lines dated in that range are removed
    (a v1 -> v2 switch: the dates v2 read are v2's); the account-level fees of the settlement
    periods collected are replaced. One transaction."""

    from coupang_sales.warehouse import load_facts, replace_window

    fees = read_frame(staging / ACCOUNT_FEES_FRAME)
    periods = [tuple(dt.date.fromisoformat(d) for d in p)
               for p in json.loads((staging / FEE_PERIODS_FILE).read_text(encoding="utf-8"))]
    fee_total = int(fees["amount"].sum()) if len(fees) else 0
    if _check(account["jet_version"]) == 1:
        lines = dated_within(read_frame(staging / ORDER_LINES_FRAME), "sales_date", window)
        result = replace_window(conn, channel=JET, account_id=account["account_id"], window=window, lines=lines,
                                run_id=run_id)
        return {**result.as_dict(), "payment_amount": int(lines["payment_amount"].sum()),
                "seller_shipping_fee": int(lines["seller_shipping_fee"].sum()), "account_fees": 0,
                "fee_periods": []}
    from coupang_sales.jet import policy as jet

    facts = read_frame(staging / FACTS_FRAME)
    read = Window(window.start, max(window.end, list_until or window.end))
    result = load_facts(conn, channel=JET, account_id=account["account_id"], facts=facts,
                        kinds=jet.JET_FACT_KINDS, read_range=read, sources=("jet_v2",), supersedes=("jet_v1",),
                        run_id=run_id,
                        derive=lambda stored: checked_derivation(stored, account_id=account["account_id"],
                                                                 staging=staging),
                        account_fees=fees, fee_periods=periods)
    sales = facts[facts["fact_kind"] != jet.ORDER_FEE_FACT]
    return {**result.as_dict(), "payment_amount": int((sales["amount"] - sales["coupon_discount"]).sum()),
            "seller_shipping_fee": int(facts.loc[facts["fact_kind"] == jet.ORDER_FEE_FACT, "amount"].sum()),
            "account_fees": fee_total, "fee_periods": [[s.isoformat(), e.isoformat()] for s, e in periods]}


def checked_derivation(stored, *, account_id: str, staging: Path):
    """``policy.derive_v2`` of the stored facts, checked by the v2 policy suite before the load commits."""
    from coupang_sales.jet import policy as jet
    from coupang_sales.jet import quality as suites

    derived = jet.derive_v2(stored, account_id=account_id)
    fee_facts = stored[stored["fact_kind"] == jet.ORDER_FEE_FACT]
    order_fees = fee_facts.groupby("order_id")["amount"].sum().astype("Int64")
    order_fees = order_fees[order_fees.index.isin(set(derived.order_lines["order_id"]))]
    _run_suite("coupang_jet_v2_derived", suites.v2_policy_checks(derived.order_lines, order_fees), staging)
    return derived
