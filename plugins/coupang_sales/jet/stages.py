"""The Coupang Jet stages over a staging folder, one implementation per integration version.

``V1`` reads the Wing sales page (판매분석) day by day and replaces the window's lines; ``V2`` reads the
Rocket Growth settlement reports of every group overlapping the read range, stores them as facts and
re-derives every order they touch. ``stages_for(account)`` picks one by ``sales.accounts.jet_version``,
once per account and run.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coupang_sales.channel import Stages, stages_by_version
from coupang_sales.errors import CollectionError
from coupang_sales.frames import chunk_file, clear_chunks, read_frame, write_frame
from coupang_sales.model import JET, dated_within
from coupang_sales.plan import LoadSummary, RunPlan, StageSummary

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
DERIVED_SUITE = "coupang_jet_v2_derived"  # load: the v2 policy suite over the lines it derives


def suite_file(name: str) -> str:
    """The staged file of the GX suite ``name``'s result (the first chunk's, for the load's suite)."""
    return f"quality_{name}.json"


DERIVED_RESULT_FILE = suite_file(DERIVED_SUITE)  # load: that suite's result, one file per derivation chunk


class V1ExtractSummary(StageSummary):
    version: int = 1
    source_rows: int


class V2ExtractSummary(StageSummary):
    version: int = 2
    settlement_groups: int
    report_files: int


class ValidateSummary(StageSummary):
    rows_extracted: int


class TransformSummary(StageSummary):
    order_lines: int
    account_fee_rows: int
    unmatched_cancellations: int | None = None   # v1
    unmatched_fees: int | None = None            # v1
    facts: int | None = None                     # v2: what this extract gives alone


def _clean(staging: Path) -> None:
    staging.mkdir(parents=True, exist_ok=True)
    for old in staging.iterdir():
        if old.is_file():
            old.unlink()  # a retry starts clean: never mix two attempts' files


def _report_files(staging: Path, report: str) -> list[Path]:
    return sorted(staging.glob(f"{report}__*.xlsx"))


def _run_suite(name: str, checks, staging: Path, *, chunk: int = 0) -> None:
    """Run the suite ``name`` and stage its result (per derivation chunk for the load's suite)."""
    from coupang_sales.quality import run_checks

    result = run_checks(name, checks)
    path = staging / chunk_file(suite_file(name), chunk)
    path.write_text(result.to_json(), encoding="utf-8")
    if not result.success:
        raise CollectionError("validation_failed", f"{len(result.failures)} expectation(s) failed: "
                              + "; ".join(result.failures) + f". Full result: {path}")


def _stale_frames(staging: Path) -> None:
    for old in [staging / V1_FRAME, *(staging / name for name in REPORT_FRAMES.values())]:
        old.unlink(missing_ok=True)  # transform reads only what this validation passed


def _write_outputs(staging: Path, lines, fees, periods: list) -> None:
    write_frame(lines, staging / ORDER_LINES_FRAME)
    write_frame(fees, staging / ACCOUNT_FEES_FRAME)
    (staging / FEE_PERIODS_FILE).write_text(json.dumps(periods), encoding="utf-8")


class V1Stages:
    """Jet v1 (Wing sales page): payment amount without coupon discounts, the option ID as order ID."""

    reads_after_window = False  # the sales page has no restatements after the day

    def extract(self, session: "WingSession", plan: RunPlan, staging: Path) -> V1ExtractSummary:
        """판매분석 of each day of the window."""
        _clean(staging)
        session.login()
        data = session.v1_sales(plan.window.start, plan.window.end)
        (staging / V1_FILE).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return V1ExtractSummary(source_rows=sum(len(day["items"]) for day in data["days"]))

    def validate(self, plan: RunPlan, staging: Path) -> ValidateSummary:
        """Read the staged rows by header name and check them with the v1 raw suite."""
        from coupang_sales.jet import quality as suites
        from coupang_sales.jet import v1 as v1_rows

        _stale_frames(staging)
        rows = v1_rows.sales_rows(json.loads((staging / V1_FILE).read_text(encoding="utf-8")))
        _run_suite("coupang_jet_v1_raw", suites.v1_raw_checks(rows, first_day=plan.window.start,
                                                              last_day=plan.window.end), staging)
        write_frame(rows, staging / V1_FRAME)
        return ValidateSummary(rows_extracted=len(rows))

    def transform(self, plan: RunPlan, staging: Path) -> TransformSummary:
        """The v1 policy, then its policy suite."""
        import pandas as pd

        from coupang_sales.jet import fees as account_level
        from coupang_sales.jet import policy as jet
        from coupang_sales.jet import quality as suites

        lines = jet.transform_v1(read_frame(staging / V1_FRAME), account_id=plan.account.account_id)
        fees = pd.DataFrame(columns=list(account_level.ACCOUNT_FEE_COLUMNS))
        _run_suite("coupang_jet_v1_policy", suites.v1_policy_checks(lines), staging)
        _write_outputs(staging, lines, fees, [])
        return TransformSummary(order_lines=len(lines), account_fee_rows=0, unmatched_cancellations=0,
                                unmatched_fees=0)

    def load(self, conn: "psycopg.Connection", plan: RunPlan, staging: Path, *, run_id: str | None) -> LoadSummary:
        """Replace the window's order lines, in one transaction."""
        from coupang_sales.warehouse import replace_window

        lines = dated_within(read_frame(staging / ORDER_LINES_FRAME), "sales_date", plan.window)
        result = replace_window(conn, channel=JET, account_id=plan.account.account_id, window=plan.window,
                                lines=lines, run_id=run_id)
        return LoadSummary(**result.as_dict(), payment_amount=int(lines["payment_amount"].sum()),
                           seller_shipping_fee=int(lines["seller_shipping_fee"].sum()), account_fees=0,
                           fee_periods=[])


class V2Stages:
    """Jet v2 (Rocket Growth settlement reports): the real order ID, coupons and fees, commission collected."""

    reads_after_window = True  # cancellations and fee reversals dated after the window restate lines in it

    def extract(self, session: "WingSession", plan: RunPlan, staging: Path) -> V2ExtractSummary:
        """Both reports of every settlement group overlapping [window.start, list_until], each group once,
        with the groups' totals."""
        _clean(staging)
        session.login()
        collected = session.settlement_reports(plan.window.start, plan.list_until, staging, REPORTS)
        (staging / RANGE_FILE).write_text(json.dumps({"first_day": plan.window.start.isoformat(),
                                                      "last_day": plan.list_until.isoformat()}), encoding="utf-8")
        return V2ExtractSummary(settlement_groups=len(collected.groups),
                                report_files=sum(len(files) for files in collected.files.values()))

    @staticmethod
    def _groups(staging: Path) -> list[Mapping[str, Any]]:
        return json.loads((staging / GROUPS_FILE).read_text(encoding="utf-8"))

    def validate(self, plan: RunPlan, staging: Path) -> ValidateSummary:
        """The rows of both reports (every group, every sheet) whose 매출인식일 is in the collected range,
        checked with the v2 raw suite."""
        from coupang_sales.jet import quality as suites
        from coupang_sales.jet import reports

        _stale_frames(staging)
        kept = json.loads((staging / RANGE_FILE).read_text(encoding="utf-8"))
        first, last = dt.date.fromisoformat(kept["first_day"]), dt.date.fromisoformat(kept["last_day"])
        category_tr, warehousing = (
            reports.recognised_within(reports.read_reports(_report_files(staging, report), report), first, last,
                                      source=report) for report in REPORTS)
        files = {report: [p.name for p in _report_files(staging, report)] for report in REPORTS}
        _run_suite("coupang_jet_v2_raw", suites.v2_raw_checks(category_tr, warehousing, self._groups(staging), files,
                                                              first_day=plan.window.start,
                                                              last_day=plan.list_until), staging)
        write_frame(category_tr, staging / REPORT_FRAMES["CATEGORY_TR"])
        write_frame(warehousing, staging / REPORT_FRAMES["WAREHOUSING_SHIPPING"])
        return ValidateSummary(rows_extracted=len(category_tr) + len(warehousing))

    def transform(self, plan: RunPlan, staging: Path) -> TransformSummary:
        """The v2 policy, then its policy suite; the account-level fees are the groups' totals."""
        from coupang_sales.errors import ExportFormatError
        from coupang_sales.jet import fees as account_level
        from coupang_sales.jet import policy as jet
        from coupang_sales.jet import quality as suites
        from coupang_sales.jet.reports import TYPED_READS

        account_id = plan.account.account_id
        result = jet.transform_v2(*(read_frame(staging / REPORT_FRAMES[report], columns=TYPED_READS[report])
                                    for report in REPORTS), account_id=account_id)
        groups = self._groups(staging)
        if len(result.account_fees):
            # The real WAREHOUSING_SHIPPING has only per-order rows; account-level fees are group totals.
            raise ExportFormatError(f"WAREHOUSING_SHIPPING: {len(result.account_fees)} row(s) without 주문ID "
                                    f"(거래유형 {sorted(set(result.account_fees['fee_type']))}); the report should "
                                    "hold per-order fees only")
        lines = result.order_lines
        fees = account_level.account_fees(groups, account_id=account_id)
        periods = [(s.isoformat(), e.isoformat()) for s, e in account_level.periods(groups)]
        _run_suite("coupang_jet_v2_policy", suites.v2_policy_checks(lines, order_fees(result.facts, lines)), staging)
        write_frame(result.facts, staging / FACTS_FRAME)
        _write_outputs(staging, lines, fees, periods)
        return TransformSummary(order_lines=len(lines), account_fee_rows=len(fees), facts=len(result.facts))

    def load(self, conn: "psycopg.Connection", plan: RunPlan, staging: Path, *, run_id: str | None) -> LoadSummary:
        """Store the report rows read for [window.start, list_until] as facts and re-derive every order
        they touch (each line from all facts of its order, whatever run collected them); the account's
        v1 lines dated in that range are removed (a v1 -> v2 switch: the dates v2 read are v2's); the
        account-level fees of the settlement periods collected are replaced. One transaction."""
        from coupang_sales.jet import policy as jet
        from coupang_sales.warehouse import load_facts

        account_id = plan.account.account_id
        fees = read_frame(staging / ACCOUNT_FEES_FRAME)
        periods = [tuple(dt.date.fromisoformat(d) for d in p)
                   for p in json.loads((staging / FEE_PERIODS_FILE).read_text(encoding="utf-8"))]
        facts = read_frame(staging / FACTS_FRAME)
        clear_chunks(staging, DERIVED_RESULT_FILE)  # an earlier try's chunks are not this load's
        chunks = itertools.count()
        result = load_facts(conn, channel=JET, account_id=account_id, facts=facts,
                            kinds=jet.JET_FACT_KINDS, read_range=plan.read_range, sources=("jet_v2",),
                            supersedes=("jet_v1",), run_id=run_id,
                            derive=lambda stored: checked_derivation(stored, account_id=account_id, staging=staging,
                                                                     chunk=next(chunks)),
                            account_fees=fees, fee_periods=periods)
        sales = facts[facts["fact_kind"] != jet.ORDER_FEE_FACT]
        return LoadSummary(
            **result.as_dict(), payment_amount=int((sales["amount"] - sales["coupon_discount"]).sum()),
            seller_shipping_fee=int(facts.loc[facts["fact_kind"] == jet.ORDER_FEE_FACT, "amount"].sum()),
            account_fees=int(fees["amount"].sum()) if len(fees) else 0,
            fee_periods=[[s.isoformat(), e.isoformat()] for s, e in periods])


def checked_derivation(stored, *, account_id: str, staging: Path, chunk: int = 0):
    """``policy.derive_v2`` of the stored facts of one derivation chunk, checked by the v2 policy suite
    before the load commits; each chunk's result is staged (``DERIVED_RESULT_FILE`` per ``chunk_file``)."""
    from coupang_sales.jet import policy as jet
    from coupang_sales.jet import quality as suites

    derived = jet.derive_v2(stored, account_id=account_id)
    _run_suite(DERIVED_SUITE, suites.v2_policy_checks(derived.order_lines, order_fees(stored, derived.order_lines)),
               staging, chunk=chunk)
    return derived


def order_fees(facts, lines):
    """Each order's net fee (its fee facts: the WAREHOUSING_SHIPPING rows summed per key, reversals
    negative) by 주문ID, for the orders that have ``lines``: what the policy suite checks their spread
    fees sum to."""
    from coupang_sales.jet import policy as jet

    fee_facts = facts[facts["fact_kind"] == jet.ORDER_FEE_FACT]
    totals = fee_facts.groupby("order_id")["amount"].sum().astype("Int64")
    return totals[totals.index.isin(set(lines["order_id"]))]


V1 = V1Stages()
V2 = V2Stages()
VERSIONS: dict[int, Stages] = {1: V1, 2: V2}


def stages_for(account: Mapping[str, Any]) -> Stages:
    """The stages of the account's ``sales.accounts.jet_version``."""
    return stages_by_version(account, VERSIONS)
