"""A sales channel as a value: its portal, its stages, the checks before them, its Assets, tags and pool.

``coupang_sales.rocket.channel.ROCKET`` and ``coupang_sales.jet.channel.JET`` are the two; the DAG
builder (``coupang_sales.airflow_glue.dag_factory.build_channel_dags``) reads everything it needs
from one, and no module or class is looked up by name. The page-object session and the stages are
reached through functions, so that a DAG file's parse imports neither Selenium nor pandas.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import psycopg

    from coupang_sales.plan import LoadSummary, RunPlan, StageSummary


class Tag(enum.StrEnum):
    """Every tag a DAG of the project may carry (``tests/dags`` refuses any other)."""

    SALES = "sales"
    COUPANG = "coupang"
    ROCKET = "rocket"
    JET = "jet"
    SUPPLIER_HUB = "supplier-hub"
    WING = "wing"
    SIGN_IN = "sign-in"


class PreCheck(enum.StrEnum):
    """A check that runs as its own task before the extract (its value is the task id)."""

    SUB_ACCOUNT_EXPIRY = "check_sub_account_expiry"
    TAX_INVOICE_BLOCK = "check_tax_invoice_block"


ORDER_LINES_ASSET = "coupang_sales.order_lines"
ACCOUNT_FEES_ASSET = "coupang_sales.account_fees"


class Stages(Protocol):
    """extract -> validate -> transform -> load of one account over its staging folder.

    Each returns a ``StageSummary`` (counts, never rows); the extract works in the portal's
    signed-on session, the load in one warehouse transaction of ``conn``.
    """

    # Whether the extract reads documents dated after the window (up to the plan's list_until) for
    # the restatements of the window; when not, list_until is the window's end.
    reads_after_window: bool

    def extract(self, session: Any, plan: RunPlan, staging: Path) -> StageSummary: ...

    def validate(self, plan: RunPlan, staging: Path) -> StageSummary: ...

    def transform(self, plan: RunPlan, staging: Path) -> StageSummary: ...

    def load(self, conn: psycopg.Connection, plan: RunPlan, staging: Path, *, run_id: str | None) -> LoadSummary: ...


@dataclass(frozen=True)
class Channel:
    """What the project knows of one channel of ``sales.accounts``."""

    name: str                                        # sales.accounts.channel, and the DAG id's stem
    portal: str                                      # whose portal settings: supplier_hub | wing
    portal_title: str                                # the portal's name in the UI: 'Coupang Supplier Hub'
    session_class: Callable[[], type]                # the page-object session of the portal
    stages_for: Callable[[Mapping[str, Any]], Stages]  # the stages of one account (Jet: by its version)
    tags: tuple[Tag, ...]
    pool: str                                        # browser tasks of one portal share it (one seller per IP)
    assets: tuple[str, ...] = (ORDER_LINES_ASSET,)   # names of the Assets its load updates
    pre_checks: tuple[PreCheck, ...] = ()            # tasks before the extract, in this order

    @property
    def dag_id(self) -> str:
        return f"{self.name}_sales"

    @property
    def key(self) -> str:
        """ROCKET / JET: the stem of the channel's own settings (``COUPANG_ROCKET_SHARDS``)."""
        return self.name.removeprefix("coupang_").upper()

    @property
    def loads_account_fees(self) -> bool:
        return ACCOUNT_FEES_ASSET in self.assets


def stages_by_version(account: Mapping[str, Any], versions: Mapping[int, Stages]) -> Stages:
    """The stages of the account's integration version, or a configuration error naming the column."""
    from coupang_sales.errors import CollectionError

    version = account.get("jet_version")
    if version not in versions:
        raise CollectionError("configuration_error",
                              f"sales.accounts.jet_version must be {' or '.join(map(str, versions))}, "
                              f"not {version!r}")
    return versions[version]

