"""The sandbox's clock moves forward between runs: what the portals list stops at its today."""

from __future__ import annotations

import datetime as dt

import pytest

D = dt.date.fromisoformat


def state(today: str = "2026-01-06"):
    from sandbox import load_scenario
    from sandbox.state import SandboxState

    line = {"kind": "발주", "po_no": "1", "sku_id": "5", "sku_name": "상품", "moved_date": "2026-01-03",
            "center": "이천1", "qty": 1, "unit_price": 1_100, "unit_supply": 1_000, "unit_tax": 100}
    scenario = load_scenario({"today": today, "rocket": {"accounts": [{
        "account_id": "V1", "vendor_name": "주식회사 예시상사", "username": "u", "password": "p",
        "sub_account_expires": "2026-12-31", "sms_challenge": False,
        "invoices": [{"invoice_no": "301", "written_date": "2026-03-20", "tax_invoice_confirmed": None,
                      "lines": [line]}]}]}, "jet": {"accounts": []}, "faults": []})
    return SandboxState(scenario)


def test_today_moves_forward_only():
    s = state()
    s.set_today(D("2026-03-21"))
    assert s.today == D("2026-03-21") and s.snapshot()["today"] == "2026-03-21"
    with pytest.raises(ValueError, match="cannot go back"):
        s.set_today(D("2026-03-01"))


def test_an_invoice_written_after_today_does_not_block_yet():
    s = state()
    assert s.pending_tax_invoices("V1") == []
    s.set_today(D("2026-03-20"))
    assert s.pending_tax_invoices("V1") == ["301"]
