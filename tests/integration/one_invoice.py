"""The smallest Rocket scenario a DAG run needs: one account, one confirmed invoice, one 발주 line
(2 × 9,900 won written on 5 January). Shared by tests that check what surrounds the collection
(migrations, staging), not the policy."""

SCENARIO = {
    "today": "2026-01-07",
    "rocket": {"accounts": [{
        "account_id": "V00000001", "vendor_name": "주식회사 예시상사", "username": "sub_ok", "password": "pw-sub_ok",
        "sub_account_expires": "2026-12-31", "sms_challenge": False,
        "invoices": [{"invoice_no": "30000001", "written_date": "2026-01-05", "tax_invoice_confirmed": "2026-01-06",
                      "lines": [{"kind": "발주", "po_no": "100000001", "sku_id": "55501", "sku_name": "상품 55501",
                                 "moved_date": "2026-01-03", "center": "이천1", "qty": 2, "unit_price": 9_900,
                                 "unit_supply": 9_000, "unit_tax": 900}]}]}]},
    "jet": {"accounts": []},
}
