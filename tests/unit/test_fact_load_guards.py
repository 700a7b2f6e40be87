"""The checks ``load_facts`` makes of an extract before it opens a transaction, and the lookup of
the groups an extract read; no database is needed for either."""

import datetime as dt

import pandas as pd
import pytest

from coupang_sales.model import Window
from coupang_sales.warehouse import _read_groups, load_facts

WINDOW = Window(dt.date(2025, 3, 1), dt.date(2025, 3, 31))


def facts(*rows: tuple[str, dt.date, str]) -> pd.DataFrame:
    return pd.DataFrame([{"fact_kind": "rocket_receipt", "order_id": f"PO{n}", "fact_key": f"k{n}",
                          "group_key": group, "fact_date": date, "document": document}
                         for n, (group, date, document) in enumerate(rows)])


def load(frame: pd.DataFrame, documents: tuple[str, ...] = ()) -> None:
    load_facts(None, channel="coupang_rocket", account_id="V1", facts=frame,
               kinds=("rocket_receipt", "rocket_return"), read_range=WINDOW, documents=documents,
               derive=lambda stored: None, sources=("rocket",), run_id=None)


@pytest.mark.parametrize("date", [dt.date(2025, 2, 28), dt.date(2025, 4, 1)])
def test_a_fact_dated_outside_the_read_range_and_of_no_document_read_is_refused(date):
    frame = facts(("PO0/1", dt.date(2025, 3, 1), "INV1"), ("PO1/1", date, "INV2"))
    with pytest.raises(ValueError, match=f"1 facts of coupang_rocket/V1 lie outside what was read.*{date}"):
        load(frame, documents=("INV1",))


def test_a_fact_outside_the_range_is_read_when_its_document_was():
    frame = facts(("PO0/1", dt.date(2025, 3, 1), "INV1"), ("PO1/1", dt.date(2025, 4, 1), "INV2"),
                  ("PO2/1", dt.date(2025, 3, 31), "INV3"))
    with pytest.raises(AttributeError, match="transaction"):  # past the checks, at the (absent) connection
        load(frame, documents=("INV2",))


def test_a_fact_of_another_kind_is_refused():
    frame = facts(("PO0/1", dt.date(2025, 3, 1), "INV1")).assign(fact_kind="jet_settlement")
    with pytest.raises(ValueError, match="not of the kinds"):
        load(frame)


def test_the_groups_read_are_those_of_some_fact_in_the_order_asked():
    frame = facts(("A/1", WINDOW.start, "I"), ("B/2", WINDOW.start, "I"), ("A/1", WINDOW.end, "I"))
    assert _read_groups(frame, ["B/2", "C/3", "A/1", "B/2", "A/"]) == [True, False, True, True, False]
    assert _read_groups(frame, []) == []
    assert _read_groups(pd.DataFrame({"group_key": pd.Series([], dtype=object)}), ["A/1"]) == [False]
