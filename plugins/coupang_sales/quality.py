"""Great Expectations suites, built in code, and the runner that validates frames with them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Check:
    """One frame to validate and the expectations (GX objects) it must meet."""

    name: str
    frame: "pd.DataFrame"
    expectations: Sequence[Any]


@dataclass
class QualityResult:
    success: bool
    failures: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)  # JSON-safe, per check

    def to_json(self) -> str:
        return json.dumps({"success": self.success, "failures": self.failures, "results": self.results},
                          ensure_ascii=False, indent=1, default=str)


def gx():
    """Import Great Expectations quietly (it is slow to import: call only inside tasks)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations

    return great_expectations


def _describe_failure(check: str, expectation: dict[str, Any]) -> str:
    kwargs = {k: v for k, v in expectation.get("kwargs", {}).items() if k != "batch_id"}
    result = expectation.get("result", {})
    sample = result.get("partial_unexpected_list")
    detail = f" ({result.get('unexpected_count')} unexpected, e.g. {sample[:3]})" if sample else ""
    where = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{check}: {expectation['expectation_type']}({where}){detail}"


# GX's name for a whole-number column once gx_frame has converted pandas' nullable Int64.
INT_TYPES = ["int64"]


def ids_present(columns) -> list:
    """Expectations that each ID column is filled: not null and not an empty string."""
    E = gx().expectations
    out = []
    for column in columns:
        out += [E.ExpectColumnValuesToNotBeNull(column=column),
                E.ExpectColumnValueLengthsToBeBetween(column=column, min_value=1)]
    return out


def gx_frame(frame: "pd.DataFrame") -> "pd.DataFrame":
    """The frame as GX sees types: nullable ``Int64`` becomes numpy ``int64`` when it has no gap.

    GX's type expectations do not recognise pandas' nullable integers; a column with a
    missing value is left as ``object`` so an "integer" expectation fails on it.
    """
    out = frame.copy()
    for column in out.columns:
        if str(out[column].dtype) == "Int64":
            out[column] = out[column].astype("object" if out[column].isna().any() else "int64")
    return out


def quiet_context(g):
    """An ephemeral GX context without progress bars: GX's default draws a tqdm 'Calculating Metrics'
    bar on stderr for every validation, dozens of lines of noise in each task log. GX 1.x has no
    environment variable for it; its data context setting ``progress_bars.globally`` turns them off."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = g.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


# The parameters through which a column or pair of columns expectation names its columns (GX 1.x).
_COLUMN_PARAMETERS = ("column", "column_A", "column_B")


def columns_checked(expectations: Sequence[Any]) -> list[str] | None:
    """The columns ``expectations`` read, in first-named order; None when one of them is not a column,
    pair or compound-columns expectation (a table expectation sees every column)."""
    names: list[str] = []
    for expectation in expectations:
        found = [getattr(expectation, p) for p in _COLUMN_PARAMETERS if getattr(expectation, p, None)]
        found += list(getattr(expectation, "column_list", None) or [])
        if not found:
            return None
        names += [name for name in found if name not in names]
    return names


def run_checks(suite_name: str, checks: Sequence[Check]) -> QualityResult:
    """Validate each frame against its expectations in an ephemeral GX context.

    A check's frame is narrowed to the columns its expectations read before GX sees it: GX
    fingerprints every column of a batch's frame (a hash of each cell) before validating it, and a
    frame of order lines carries product names and other text no expectation reads (the Rocket policy
    suite over a 100,000-line derivation chunk: 1.2-1.4 s whole, 0.85-1.0 s narrowed).
    """
    g = gx()
    context = quiet_context(g)
    source = context.data_sources.add_pandas(name=suite_name)
    outcome = QualityResult(success=True)
    for check in checks:
        asset = source.add_dataframe_asset(name=check.name)
        batch = asset.add_batch_definition_whole_dataframe(f"{check.name}_all").get_batch(
            batch_parameters={"dataframe": gx_frame(_narrowed(check))})
        suite = g.ExpectationSuite(name=f"{suite_name}.{check.name}")
        for expectation in check.expectations:
            suite.add_expectation(expectation)
        described = batch.validate(suite, result_format="SUMMARY").describe_dict()
        outcome.results[check.name] = described
        for expectation in described["expectations"]:
            if not expectation["success"]:
                outcome.success = False
                outcome.failures.append(_describe_failure(check.name, expectation))
    return outcome


def _narrowed(check: Check) -> "pd.DataFrame":
    columns = columns_checked(check.expectations)
    if columns is None or any(name not in check.frame.columns for name in columns):
        return check.frame  # GX reports the missing column itself
    return check.frame.loc[:, columns]


Builder = Callable[..., list[Check]]
