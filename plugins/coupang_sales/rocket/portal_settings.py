"""The settings of Supplier Hub as a model: what ``rocket/supplier_hub.json`` holds and a deployment may override."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from coupang_sales.portal.settings import PortalDefaults, PortalSettingsModel, SharedPaths, Strict, declare


class SupplierHubPaths(SharedPaths):
    home: str
    purchase_account: str  # 정산 > 일반매입계정
    receive_detail: str  # 입고상세내역
    sub_accounts: str  # 부계정 관리


class SupplierHubPageSizes(Strict):
    purchase_account: Annotated[int, Field(ge=1)]


class SupplierHubTexts(Strict):
    tax_invoice_notice: Annotated[str, Field(min_length=1)]  # 미처리된 세금계산서, in a non-Excel answer


class SupplierHubSettings(PortalSettingsModel):
    portal: Literal["supplier_hub"]
    paths: SupplierHubPaths
    page_sizes: SupplierHubPageSizes
    texts: SupplierHubTexts
    receive_detail_source: Literal["export", "pages"] = "pages"  # 입고상세내역 from the .xlsx or the pages


SUPPLIER_HUB_SETTINGS = declare(PortalDefaults("supplier_hub", Path(__file__).with_name("supplier_hub.json"),
                                               SupplierHubSettings))
