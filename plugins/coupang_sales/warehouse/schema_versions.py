"""Versioned migrations of the ``sales`` schema, applied once per deploy, never by a run.

The migrations are the files ``migrations/NNNN_slug.sql`` beside this module, applied in
order of NNNN, each in its own transaction together with its row in
``sales.schema_migrations(version, name, applied_at)``. A transaction-level advisory lock
serialises concurrent migrators (two deploy jobs, a deploy and ``make demo``): the second
waits, then finds the version applied and skips it. A warehouse at a version this code does
not know is refused, by ``migrate`` and by every run.

A warehouse created before versioning (by the old ``apply_schema`` of every run: a ``sales``
schema with no version table) is recorded at 0001 without running its DDL when it already
holds every object 0001 makes; one missing some (made by an older release) gets 0001 run,
which only creates what is missing (0001 is idempotent, as the old per-run schema was).

Adding a change to the schema is adding ``0002_what_it_does.sql``: nothing else.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from coupang_sales.errors import CollectionError

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
COMMAND = "python -m coupang_sales.warehouse.migrate"
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('coupang_sales.schema'))"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_VERSION_TABLE = """
CREATE SCHEMA IF NOT EXISTS sales;
CREATE TABLE IF NOT EXISTS sales.schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""
_VERSION_TABLE_EXISTS = "SELECT to_regclass('sales.schema_migrations') IS NOT NULL"
_APPLIED = "SELECT version, name FROM sales.schema_migrations ORDER BY version"
_RECORD = "INSERT INTO sales.schema_migrations (version, name) VALUES (%s, %s)"
_HAS_ORDER_LINES = "SELECT to_regclass('sales.order_lines') IS NOT NULL"
_CATALOG = """
SELECT c.relname, c.relkind, coalesce(array_agg(a.attname::text ORDER BY a.attnum)
                                      FILTER (WHERE a.attnum > 0 AND NOT a.attisdropped), '{}')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'sales'
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND c.relkind IN ('r', 'v')
WHERE c.relkind IN ('r', 'v', 'i')
GROUP BY c.relname, c.relkind"""

# Every table (with its columns), view and index that 0001 creates: a warehouse of the
# per-run schema holding all of them is at 0001 already. Fixed, as 0001 is; a test checks it
# against a warehouse migrated from empty.
BASELINE_OBJECTS: dict[str, tuple[str, ...]] = {
    "accounts": ("channel", "account_id", "conn_id", "jet_version", "active"),
    "order_lines": ("channel", "account_id", "order_id", "line_key", "option_id", "product_name", "sales_date",
                    "quantity", "gross_amount", "coupon_discount", "payment_amount", "seller_shipping_fee",
                    "collected_commission", "is_cancelled", "source", "cancelled_quantity", "cancelled_amount",
                    "loaded_at", "run_id"),
    "account_fees": ("channel", "account_id", "period_start", "period_end", "fee_type", "amount",
                     "settlement_group_key", "run_id", "loaded_at"),
    "commission_settings": ("channel", "account_id", "option_id", "rate_percent", "updated_at"),
    "order_lines_effective": ("channel", "account_id", "order_id", "line_key", "option_id", "product_name",
                              "sales_date", "quantity", "gross_amount", "coupon_discount", "payment_amount",
                              "seller_shipping_fee", "collected_commission", "is_cancelled", "source",
                              "cancelled_quantity", "cancelled_amount", "loaded_at", "run_id",
                              "effective_commission", "commission_source"),
    "collection_runs": ("id", "channel", "account_id", "window_start", "window_end", "status", "reason", "message",
                        "rows_extracted", "rows_loaded", "started_at", "finished_at", "run_id", "task_id",
                        "try_number", "details"),
    "order_line_changes": ("id", "channel", "account_id", "order_id", "line_key", "sales_date", "change",
                           "old_payment_amount", "new_payment_amount", "old_quantity", "new_quantity", "run_id",
                           "changed_at", "cause", "cause_facts"),
    "collected_facts": ("channel", "account_id", "fact_kind", "order_id", "fact_key", "group_key", "fact_date",
                        "document", "option_id", "product_name", "quantity", "amount", "coupon_discount",
                        "commission", "unit_price", "run_id", "collected_at"),
    "restatements": ("channel", "account_id", "group_key", "order_id", "line_key", "fact_kind", "fact_key",
                     "quantity", "amount"),
    "restatement_adjustments": ("channel", "account_id", "group_key", "fact_kind", "order_id", "fact_key", "reason",
                                "fact_date", "document", "option_id", "quantity", "amount", "seller_shipping_fee"),
}
BASELINE_INDEXES = frozenset({
    "accounts_pkey", "order_lines_pkey", "order_lines_by_date", "order_lines_by_rocket_group", "account_fees_pkey",
    "commission_settings_key", "collection_runs_pkey", "collection_runs_by_account", "order_line_changes_pkey",
    "order_line_changes_by_date", "collected_facts_pkey", "collected_facts_by_group", "collected_facts_by_date",
    "restatements_pkey", "restatements_by_group", "restatement_adjustments_pkey",
    "restatement_adjustments_by_group",
})


class SchemaVersionError(CollectionError):
    """The warehouse is not at the version this code needs (not migrated, behind, or ahead)."""

    def __init__(self, message: str):
        super().__init__("configuration_error", message)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


def migrations(directory: Path | None = None) -> list[Migration]:
    """The migrations shipped in ``directory`` (default: this package's), in version order.

    A file that is not ``NNNN_slug.sql``, two files of one version or a gap in the numbers
    is an error: a migration must never be skipped or applied twice under two names.
    """
    folder = Path(directory) if directory is not None else MIGRATIONS_DIR
    found: dict[int, Migration] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix != ".sql":
            continue
        match = _FILE_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path}: a migration is named NNNN_slug.sql (four digits, lower-case slug)")
        version = int(match.group(1))
        if version in found:
            raise ValueError(f"{path}: version {version:04d} is also {found[version].path.name}")
        found[version] = Migration(version, match.group(2), path)
    ordered = [found[v] for v in sorted(found)]
    for expected, migration in enumerate(ordered, start=1):
        if migration.version != expected:
            raise ValueError(f"{folder}: migration {expected:04d} is missing (next is {migration.path.name})")
    return ordered


def _applied(cur) -> dict[int, str]:
    cur.execute(_VERSION_TABLE_EXISTS)
    if not cur.fetchone()[0]:
        return {}
    cur.execute(_APPLIED)
    return dict(cur.fetchall())


def _refuse_newer(applied: dict[int, str], known: list[Migration]) -> None:
    latest = known[-1].version if known else 0
    newer = sorted(v for v in applied if v > latest)
    if newer:
        raise SchemaVersionError(
            f"the warehouse is at schema version {max(applied):04d} ({applied[max(applied)]}), newer than this "
            f"code knows (up to {latest:04d}): deploy the code that shipped migration {newer[0]:04d} or later; "
            "nothing was changed")


def _missing_baseline_objects(cur) -> list[str]:
    cur.execute(_CATALOG)
    catalog = {name: (kind, set(columns)) for name, kind, columns in cur.fetchall()}
    missing = []
    for name, columns in BASELINE_OBJECTS.items():
        if name not in catalog:
            missing.append(f"sales.{name}")
        else:
            missing += [f"sales.{name}.{c}" for c in columns if c not in catalog[name][1]]
    missing += [f"index sales.{name}" for name in sorted(BASELINE_INDEXES) if name not in catalog]
    return missing


def migrate(conn: "psycopg.Connection", *, directory: Path | None = None) -> list[int]:
    """Bring the warehouse to the newest migration; returns the versions applied now.

    Each migration runs in its own transaction with its version row, under an advisory
    lock, so a failing one leaves the warehouse at the previous version and two migrators
    at once apply each migration once. Refuses (``SchemaVersionError``) a warehouse at a
    version newer than the migrations known here.
    """
    known = migrations(directory)
    done: list[int] = []
    for migration in known:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(_LOCK)
            applied = _applied(cur)
            _refuse_newer(applied, known)
            if migration.version in applied:
                continue
            if migration.version == 1 and not applied:
                cur.execute(_HAS_ORDER_LINES)
                unversioned = cur.fetchone()[0]
                missing = _missing_baseline_objects(cur) if unversioned else None
            else:
                unversioned, missing = False, None
            cur.execute(_VERSION_TABLE)
            if unversioned and not missing:
                log.info("warehouse schema: a warehouse of the per-run schema, recorded at 0001 without change")
            else:
                if unversioned:
                    log.info("warehouse schema: completing a per-run schema with 0001 (missing %s)",
                             ", ".join(missing))
                log.info("warehouse schema: applying %04d %s", migration.version, migration.name)
                cur.execute(migration.sql)
            cur.execute(_RECORD, (migration.version, migration.name))
        done.append(migration.version)
    return done


def current_version(conn: "psycopg.Connection") -> int | None:
    """The newest applied migration, or None for a warehouse never migrated."""
    with conn.cursor() as cur:
        applied = _applied(cur)
    return max(applied) if applied else None


def require_current(conn: "psycopg.Connection", *, directory: Path | None = None) -> int:
    """Check, without any DDL or lock, that the warehouse is at this code's newest migration.

    Every run calls it first: a warehouse never migrated, behind or ahead fails the run
    with a message naming the command that fixes it.
    """
    known = migrations(directory)
    latest = known[-1].version if known else 0
    with conn.cursor() as cur:
        applied = _applied(cur)
    _refuse_newer(applied, known)
    if not applied:
        raise SchemaVersionError(f"the warehouse has no schema version (never migrated): run `{COMMAND}` "
                                 f"(or `make demo` locally) to bring it to version {latest:04d}")
    pending = [m for m in known if m.version not in applied]
    if pending:
        raise SchemaVersionError(
            f"the warehouse is at schema version {max(applied):04d}, this code needs {latest:04d} (pending: "
            + ", ".join(f"{m.version:04d}_{m.name}" for m in pending) + f"): run `{COMMAND}`")
    return latest
