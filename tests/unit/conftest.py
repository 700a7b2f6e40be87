"""Reports the fuzz tests' input counts (tests/unit/test_fuzz_parsers.py) in pytest's summary."""

from __future__ import annotations

import sys


def pytest_terminal_summary(terminalreporter):
    module = sys.modules.get("test_fuzz_parsers")
    counts = getattr(module, "FUZZ_COUNTS", None)
    if not counts:
        return
    terminalreporter.section("fuzzing: inputs tried")
    total = 0
    for name, tally in sorted(counts.items()):
        tried = tally["parsed"] + tally["refused"]
        total += tried
        terminalreporter.write_line(f"{name:<34} {tried:>6} tried: {tally['parsed']:>5} parsed to valid rows, "
                                    f"{tally['refused']:>5} refused with a clear error")
    failed = [r for r in terminalreporter.stats.get("failed", []) if "test_fuzz_parsers" in r.nodeid]
    verdict = f"{len(failed)} fuzz test(s) FAILED" if failed else "nothing else escaped"
    terminalreporter.write_line(f"{'all':<34} {total:>6} tried; {verdict}")
