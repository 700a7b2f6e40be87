"""Coupang Jet as a ``Channel``: Wing, the stages of each account's integration version, the account fees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coupang_sales.channel import ACCOUNT_FEES_ASSET, ORDER_LINES_ASSET, Channel, Stages, Tag
from coupang_sales.model import JET as NAME


def _session_class() -> type:
    from coupang_sales.jet.wing import WingSession

    return WingSession


def _stages(account: Mapping[str, Any]) -> Stages:
    from coupang_sales.jet.stages import stages_for

    return stages_for(account)


JET = Channel(
    name=NAME,
    portal="wing",
    portal_title="Coupang Wing",
    session_class=_session_class,
    stages_for=_stages,
    tags=(Tag.COUPANG, Tag.JET, Tag.WING),
    pool="wing",
    assets=(ORDER_LINES_ASSET, ACCOUNT_FEES_ASSET),
)
