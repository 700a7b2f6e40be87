"""Coupang Rocket as a ``Channel``: Supplier Hub, its two checks before the extract, the Rocket stages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coupang_sales.channel import ORDER_LINES_ASSET, Channel, PreCheck, Stages, Tag
from coupang_sales.model import ROCKET as NAME


def _session_class() -> type:
    from coupang_sales.rocket.supplier_hub import SupplierHubSession

    return SupplierHubSession


def _stages(account: Mapping[str, Any]) -> Stages:
    from coupang_sales.rocket.stages import STAGES

    return STAGES


ROCKET = Channel(
    name=NAME,
    portal="supplier_hub",
    portal_title="Coupang Supplier Hub",
    session_class=_session_class,
    stages_for=_stages,
    tags=(Tag.COUPANG, Tag.ROCKET, Tag.SUPPLIER_HUB),
    pool="supplier_hub",
    assets=(ORDER_LINES_ASSET,),
    pre_checks=(PreCheck.SUB_ACCOUNT_EXPIRY, PreCheck.TAX_INVOICE_BLOCK),
)
