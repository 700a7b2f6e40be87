"""Great Expectations validates without drawing progress bars into the task log."""

from __future__ import annotations


def test_run_checks_draws_no_progress_bar(capfd):
    import pandas as pd

    from coupang_sales.quality import Check, gx, run_checks

    E = gx().expectations
    capfd.readouterr()
    outcome = run_checks("progress", [Check("rows", pd.DataFrame({"order_id": ["1", "2"]}),
                                            [E.ExpectColumnValuesToNotBeNull(column="order_id")])])
    out, err = capfd.readouterr()
    assert outcome.success
    assert "Calculating Metrics" not in out + err, "GX drew its tqdm progress bar"
