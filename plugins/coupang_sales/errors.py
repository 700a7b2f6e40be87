"""Failure categories of a collection, each with the action a person has to take."""

from __future__ import annotations

# category -> (retryable, default action for the alert)
CATEGORIES: dict[str, tuple[bool, str]] = {
    "tax_invoice_pending": (
        False,
        "The seller must process (confirm) the pending reverse-issued tax invoice "
        "(미처리된 세금계산서) in Supplier Hub; collection resumes on the next run.",
    ),
    "sub_account_expired": (
        False,
        "The master account must click '연장하기' at 서플라이어허브 > 부계정 관리 "
        "for the integration's sub-account.",
    ),
    "auth_challenge": (
        False,
        "The portal asked for SMS verification (인증번호) for a browser profile it does not know; "
        "a person signs on once in the account's profile: the 'Sign in' action of the Coupang collections "
        "page (the sign-in DAG asks for the code as a Required Action), or on the profile's machine "
        "python -m coupang_sales.sign_in CHANNEL ACCOUNT.",
    ),
    "profile_busy": (
        True,
        "Another task (or a person's sign-in) is using the account's browser profile; the task retries by itself.",
    ),
    "bot_rejected": (
        False,
        "The portal's bot protection rejected the automated browser (Access Denied, or a blank page): "
        "run the extractor with a real, headed Chrome (a remote Selenium Grid node, SELENIUM_REMOTE_URL, "
        "or SELENIUM_HEADLESS=false on a display), ideally with a profile a person has signed on with.",
    ),
    "bad_credentials": (
        False,
        "Fix the username/password in the account's Airflow connection.",
    ),
    "portal_unavailable": (
        True,
        "The portal failed or timed out; the task retries by itself. Check the portal if it persists.",
    ),
    "export_format_changed": (
        False,
        "The portal's export changed shape; update the parser (coupang_sales.exports) "
        "for the new columns before re-running.",
    ),
    "validation_failed": (
        False,
        "The extracted data broke a data-quality rule; open the kept validation result "
        "and fix the source or the rule, then re-run the date.",
    ),
    "warehouse_error": (
        True,
        "The warehouse failed; the task retries by itself. Check the PostgreSQL connection "
        "'coupang_warehouse' if it persists.",
    ),
    "configuration_error": (
        False,
        "Fix the DAG or account configuration named in the message.",
    ),
    "not_implemented": (False, "This collection path is not implemented yet."),
}

# Failures whose fix is a seller's (or a person's at the portal), not the data team's: a pending tax
# invoice, an expired sub-account, an SMS step. They alert when the account becomes blocked and then
# at most every COUPANG_BLOCKED_REALERT_HOURS, and by default they do not fail the run (COUPANG_FAIL_RUN_ON).
SELLER_ACTION_CATEGORIES = frozenset({"tax_invoice_pending", "sub_account_expired", "auth_challenge"})

# How a task ends for a category (coupang_sales.airflow_glue.outcomes gives each its Airflow state).
SELLER_ACTION = "seller_action"  # the seller must act: the task ends skipped, the attempt recorded blocked
RETRIED = "retried"  # transient: the try fails and is retried, then the task fails
FAILED = "failed"  # the data team must act: the task fails at once


def outcome_of(category: str | None) -> str:
    """``SELLER_ACTION``, ``RETRIED`` or ``FAILED`` for a failure's category (``None`` or unknown: an
    unexpected error, which is retried)."""
    if category in SELLER_ACTION_CATEGORIES:
        return SELLER_ACTION
    if category is None or category not in CATEGORIES:
        return RETRIED
    return RETRIED if CATEGORIES[category][0] else FAILED


class CollectionError(Exception):
    """A collection failure with a category from ``CATEGORIES``.

    Messages must never contain credentials: build them from account ids, URLs
    without query secrets, page titles and counts only.
    """

    def __init__(self, category: str, message: str, *, action: str | None = None):
        if category not in CATEGORIES:
            raise ValueError(f"unknown failure category {category!r}")
        self.category = category
        self.retryable, default_action = CATEGORIES[category]
        self.action = action or default_action
        self.detail = message
        super().__init__(f"[{category}] {message} Action: {self.action}")


class ExportFormatError(CollectionError):
    """An export or page no longer has the shape the parser expects."""

    def __init__(self, message: str):
        super().__init__("export_format_changed", message)
