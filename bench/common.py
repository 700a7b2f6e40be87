"""What every benchmark shares: paths, a timer, peak memory, and one way to report figures.

Each benchmark is a script (``python bench/bench_<name>.py``) that prints its figures
as a table and writes them to ``.local/bench/<name>.json``; ``bench/run.py`` runs them
one after another, each in its own process (so peak memory is the benchmark's own), and
prints every figure and ratio with its target.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".local" / "bench"
for _path in (ROOT / "plugins", ROOT / "include"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str | None = None      # e.g. "<= 3.0", "< 1536", ">= 20"; None: reported, not a target
    note: str = ""

    @property
    def met(self) -> bool | None:
        if not self.target:
            return None
        op, bound = self.target.split()
        bound = float(bound)
        return {"<=": self.value <= bound, "<": self.value < bound,
                ">=": self.value >= bound, ">": self.value > bound}[op]


@dataclass
class Report:
    benchmark: str
    figures: list[Figure] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def add(self, name: str, value: float, unit: str, target: str | None = None, note: str = "") -> Figure:
        figure = Figure(name, value, unit, target, note)
        self.figures.append(figure)
        return figure

    def emit(self) -> None:
        """Print the table and write ``.local/bench/<benchmark>.json``."""
        print(format_table(self))
        RESULTS.mkdir(parents=True, exist_ok=True)
        payload = {"benchmark": self.benchmark, "settings": self.settings, "machine": machine(),
                   "figures": [{**asdict(f), "met": f.met} for f in self.figures]}
        (RESULTS / f"{self.benchmark}.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False))


def format_table(report: Report) -> str:
    lines = [f"== {report.benchmark} " + " ".join(f"{k}={v}" for k, v in report.settings.items())]
    for f in report.figures:
        verdict = "" if f.met is None else ("  MET" if f.met else "  MISSED")
        target = f"  (target {f.target})" if f.target else ""
        note = f"  - {f.note}" if f.note else ""
        lines.append(f"  {f.name:<62} {f.value:>12.3f} {f.unit:<8}{target}{verdict}{note}")
    return "\n".join(lines)


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "load_average": load_average()}


def load_average() -> str:
    """The machine's 1-, 5- and 15-minute load averages, to print beside a figure (other jobs share it)."""
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    """Peak resident memory of the largest child process this one has waited for (0 if none)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


@contextlib.contextmanager
def timed(into: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall time of the block to ``into[name]`` (seconds)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        into[name] = into.get(name, 0.0) + time.perf_counter() - start


# The tables a fact load writes. Between two loads of a benchmark they are vacuumed and analysed (not
# timed), as autovacuum does within a minute of a load that wrote a million rows, long before the next
# daily run: the second load measures that steady state, not a second load started seconds after the
# first, beside whatever autovacuum work the first one set off. (Measured both ways on one machine, the
# two were within the machine's own run-to-run spread: the nothing-changed load 9.8 s without, 10.8 s
# with.)
LOADED_TABLES = ("sales.collected_facts", "sales.order_lines", "sales.order_line_changes", "sales.restatements",
                 "sales.restatement_adjustments", "sales.account_fees")
SETTLE = "VACUUM (ANALYZE) " + ", ".join(LOADED_TABLES)


def settle(conn) -> None:
    """VACUUM (ANALYZE) the tables a load wrote, on an autocommit connection (see ``LOADED_TABLES``)."""
    conn.execute(SETTLE)

