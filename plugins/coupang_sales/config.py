"""The ``COUPANG_*`` environment of the collection: one documented settings object, read when asked.

``settings()`` reads the environment each time it is called (a test or an operator may change it
between runs; nothing is cached). An empty variable counts as unset. A boolean is read one way,
pydantic's: ``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``, any case. A value of the
wrong type is a ``configuration_error`` naming the variable. The portal settings
(``COUPANG_PORTAL_SETTINGS``) and the browser profiles' root (``COUPANG_PROFILE_DIR``) are read by
``coupang_sales.portal``.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from coupang_sales.errors import CollectionError

PREFIX = "COUPANG_"


class ConfigurationError(CollectionError, ValueError):
    """A ``COUPANG_*`` variable whose value is not of its setting's type."""

    def __init__(self, message: str):
        super().__init__("configuration_error", message)


class Settings(BaseSettings):
    """Every ``COUPANG_<NAME>`` variable, its type and its default (the field ``name`` is ``COUPANG_NAME``)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, case_sensitive=False, env_ignore_empty=True,
                                      extra="ignore", str_strip_whitespace=True, frozen=True)

    # --- the window ---------------------------------------------------------------------------------
    today: dt.date | None = Field(None, description="Pins today in Asia/Seoul (YYYY-MM-DD), for sandboxes and "
                                                    "replays; unset: the clock's date.")
    max_catch_up_days: int = Field(92, ge=0, description="How far back a daily run goes to close a gap by "
                                                         "itself (days).")

    # --- the DAGs, read when a DAG file is parsed (the DAG processor and every worker must agree) --------
    shards: int | None = Field(None, ge=1, le=99, description="How many DAGs share a channel's accounts, "
                                                              "unless the channel's own setting says.")
    rocket_shards: int | None = Field(None, ge=1, le=99, description="COUPANG_SHARDS for Coupang Rocket.")
    jet_shards: int | None = Field(None, ge=1, le=99, description="COUPANG_SHARDS for Coupang Jet.")
    retry_delay_seconds: int = Field(120, ge=0, description="The first retry's delay; doubled at each retry "
                                                            "up to 30 minutes.")
    browser_task_timeout_minutes: float = Field(180, gt=0, description="The backstop of every browser task.")
    load_task_timeout_minutes: float = Field(60, gt=0, description="The backstop of every load task.")
    browser_queue: str = Field("", description="The Celery queue of the browser tasks; empty: Airflow's "
                                               "default queue.")
    supplier_hub_pool: str = Field("coupang_supplier_hub", description="The pool of Supplier Hub's browser "
                                                                       "tasks.")
    wing_pool: str = Field("coupang_wing", description="The pool of Wing's browser tasks.")
    checks_sign_on: bool = Field(False, description="May the Supplier Hub checks sign on themselves (an "
                                                    "address per account), instead of deferring to the extract?")

    # --- sign-ons ------------------------------------------------------------------------------------
    one_seller_per_address: bool = Field(True, description="Does a password sign-on end the sessions of the "
                                                           "portal's other sellers from the same address?")
    sessions_survive_browser: bool = Field(False, description="Does the portal keep a session in the profile "
                                                              "after the browser ends?")

    # --- egress routes and shared browser sessions (airflow_glue/shared_browser.py) -------------------
    routes: str = Field("", description="The egress routes, a JSON list of {name, proxy | conn_id | grid_node}; "
                                        "empty: the machine's own address.")
    shared_browser: bool = Field(True, description="One browser session per account and run on a leased route, "
                                                   "shared by its checks and extract (false: the checks defer "
                                                   "to the extract's browser).")
    route_lease_seconds: int = Field(600, ge=30, description="A route lease not renewed for this long is "
                                                             "reaped (its holder was killed).")
    route_wait_seconds: int = Field(30, ge=1, description="A task that finds every route taken asks again this "
                                                          "much later (rescheduled: no worker slot held).")

    # --- staging -------------------------------------------------------------------------------------
    staging_url: str | None = Field(None, description="The staging root as a URL (s3://, gs://, ...); unset: "
                                                      "COUPANG_STAGING_DIR.")
    staging_dir: str | None = Field(None, description="The local staging root; unset: $AIRFLOW_HOME/staging.")
    staging_conn_id: str | None = Field(None, description="The Airflow connection of the staging store.")
    staging_retention_days: float = Field(14, ge=0, description="Staging folders older than this are deleted.")

    # --- the warehouse -------------------------------------------------------------------------------
    warehouse_lock_timeout_seconds: float = Field(120, ge=0, description="The longest wait for one lock "
                                                                         "(0: none).")
    warehouse_statement_timeout_seconds: float = Field(900, ge=0, description="The longest one statement may "
                                                                              "run (0: none).")
    warehouse_asset_base: str = Field("postgres://warehouse:5432/sales", description="host:port/database of "
                                                                                     "the Assets' URIs.")

    # --- alerts and the run's state ------------------------------------------------------------------
    fail_run_on: Literal["action_needed", "any", "never"] = Field(
        "action_needed", description="When the report fails the run: an account the data team must act on, "
                                     "any account that did not load, or never.")
    blocked_realert_hours: float = Field(24.0, description="How often an account that stays blocked by a "
                                                           "seller's action is alerted again (0: every run).")

    def shards_of(self, channel_key: str) -> int:
        """The shard count of a channel (``ROCKET``/``JET``): its own setting, else COUPANG_SHARDS, else 1."""
        return getattr(self, f"{channel_key.lower()}_shards") or self.shards or 1


def settings() -> Settings:
    """The settings as the environment holds them now."""
    try:
        return Settings()
    except ValidationError as exc:
        wrong = "; ".join(f"{PREFIX}{'_'.join(map(str, e['loc'])).upper()}={e.get('input')!r}: {e['msg']}"
                          for e in exc.errors())
        raise ConfigurationError(wrong) from None
