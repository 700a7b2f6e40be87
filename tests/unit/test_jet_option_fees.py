"""Jet v2 fees spread per option (issue #28, item 5): a WAREHOUSING_SHIPPING row naming an 옵션ID is
spread over that option's lines, a row naming none over the order's lines."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from test_jet_policy import cancel_row, tr_row, ws_row

from coupang_sales.jet import policy as jet


def ws(order: str, kind: str, cost: int, option: str = "", **kwargs) -> dict[str, str]:
    return {**ws_row(order, kind, cost, **kwargs), "옵션ID": option}


def fees_of(tr_rows: list[dict], ws_rows: list[dict]) -> dict[str, int]:
    out = jet.transform_v2(pd.DataFrame(tr_rows, columns=list(jet.CATEGORY_TR_COLUMNS)),
                           pd.DataFrame(ws_rows, columns=list(jet.WAREHOUSING_SHIPPING_COLUMNS)), account_id="A1")
    lines = out.order_lines
    assert int(lines["seller_shipping_fee"].sum()) == sum(
        jet.order_fee_totals(pd.DataFrame(ws_rows, columns=list(jet.WAREHOUSING_SHIPPING_COLUMNS))))
    return {r.option_id: int(r.seller_shipping_fee) for r in lines.itertuples()}


def test_a_fee_naming_an_option_goes_to_that_options_lines_only():
    sales = [tr_row("1", "X", price=10_000), tr_row("1", "Y", price=30_000)]
    assert fees_of(sales, [ws("1", "배송비 정산", 2_000, "X"), ws("1", "입출고비 정산", 800, "Y")]) == {
        "X": 2_000, "Y": 800}


def test_a_fee_naming_no_option_is_spread_over_the_order():
    sales = [tr_row("1", "X", price=10_000), tr_row("1", "Y", price=30_000)]
    assert fees_of(sales, [ws("1", "배송비 정산", 2_000)]) == {"X": 500, "Y": 1_500}


def test_a_fee_of_an_option_without_a_line_in_the_order_is_spread_over_the_order():
    sales = [tr_row("1", "X", price=10_000), tr_row("1", "Y", price=30_000)]
    assert fees_of(sales, [ws("1", "배송비 정산", 2_000, "Z")]) == {"X": 500, "Y": 1_500}


def test_the_cancellation_of_option_y_leaves_option_xs_fee_untouched():
    sales = [tr_row("1", "X", price=10_000), tr_row("1", "Y", price=30_000)]
    fees = [ws("1", "배송비 정산", 2_000, "X"), ws("1", "입출고비 정산", 700, "X"),
            ws("1", "배송비 정산", 2_000, "Y"), ws("1", "입출고비 정산", 900, "Y")]
    before = fees_of(sales, fees)
    # Y cancelled: its 주문 정산취소 and its fees reversed, the next day
    after = fees_of([*sales, cancel_row("1", "Y", price=30_000)],
                    [*fees, ws("1", "배송비 정산취소", 2_000, "Y", date="2026-01-06", sign=-1),
                     ws("1", "입출고비 정산취소", 900, "Y", date="2026-01-06", sign=-1)])
    assert before == {"X": 2_700, "Y": 2_900}
    assert after == {"X": 2_700, "Y": 0}


@settings(max_examples=25, deadline=None, database=None)
@given(prices=st.lists(st.integers(0, 50_000), min_size=2, max_size=4),
       fees=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 5_000)), min_size=1, max_size=6),
       order_fee=st.integers(0, 3_000), cancelled=st.integers(0, 3), reversed_fee=st.booleans())
def test_an_options_fee_never_moves_with_another_options_cancellation(prices, fees, order_fee, cancelled,
                                                                      reversed_fee):
    """Per option: Σ its lines' fee = its own fee rows + its share of the order-level rows, before and after
    another option of the order is cancelled (with or without that option's fee reversals)."""
    options = [f"O{i}" for i in range(len(prices))]
    sales = [tr_row("1", o, price=p) for o, p in zip(options, prices, strict=True)]
    rows = [ws("1", "배송비 정산", amount, options[i % len(options)]) for i, amount in fees]
    if order_fee:
        rows.append(ws("1", "입출고비 정산", order_fee))
    victim = options[cancelled % len(options)]
    before = fees_of(sales, rows)
    reversals = [ws("1", "배송비 정산취소", amount, victim, date="2026-01-06", sign=-1)
                 for i, amount in fees if options[i % len(options)] == victim] if reversed_fee else []
    after = fees_of([*sales, cancel_row("1", victim, price=prices[cancelled % len(options)])], rows + reversals)
    for option in options:
        if option != victim:
            assert after[option] == before[option]
    own = {o: sum(a for i, a in fees if options[i % len(options)] == o) for o in options}
    if not order_fee:
        assert before == own
        assert after[victim] == (0 if reversed_fee else own[victim])


@settings(max_examples=25, deadline=None, database=None)
@given(orders=st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.integers(0, 2), st.integers(0, 2_000)),
                       min_size=1, max_size=12),
       usage=st.booleans(), chunk=st.integers(1, 4))
def test_reports_taken_in_chunks_of_orders_give_what_one_pass_gives(orders, usage, chunk):
    """``transform_v2`` over ``TRANSFORM_CHUNK_ORDERS`` orders at a time returns the same frames, row for
    row, as one pass: orders with and without sales, cancellations with and without an original, fees
    with and without a line, with an option and without, account-level fees."""
    tr_rows, ws_rows = [], []
    for number, (options, cancelled, fees, fee) in enumerate(orders):
        order = f"9{(number * 37) % 101:03d}"  # not in file order
        for option in range(options):
            tr_rows.append(tr_row(order, f"O{option}", price=1_000 * (option + 1), qty=1 + option))
        if cancelled:
            tr_rows.append(cancel_row(order, "O0", price=1_000))  # no original when the order has no sale
        ws_rows += [ws(order, "배송비 정산", fee + i, f"O{i}" if i % 2 else "") for i in range(fees)]
    if usage:
        ws_rows.append(ws("", "보관비", 700))
    tr = pd.DataFrame(tr_rows, columns=list(jet.CATEGORY_TR_COLUMNS))
    wsf = pd.DataFrame(ws_rows, columns=list(jet.WAREHOUSING_SHIPPING_COLUMNS))
    whole = jet.transform_v2(tr, wsf, account_id="A1")
    original = jet.TRANSFORM_CHUNK_ORDERS
    jet.TRANSFORM_CHUNK_ORDERS = chunk
    try:
        chunked = jet.transform_v2(tr, wsf, account_id="A1")
    finally:
        jet.TRANSFORM_CHUNK_ORDERS = original
    for name in ("order_lines", "facts", "restatements", "adjustments", "account_fees", "unmatched_cancellations",
                 "unmatched_fees"):
        pd.testing.assert_frame_equal(getattr(chunked, name), getattr(whole, name), obj=name)
