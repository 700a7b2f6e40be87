"""Scenario files of the portal sandbox: loading, validation and the amounts derived from them."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from sandbox.faults import Fault, parse_fault

# Akamai's JavaScript challenge at the sign-on takes about 16 s (REAL-PORTALS.md §2, OH).
RECORDED_CHALLENGE_SECONDS = 16.0

PURCHASE, RETURN = "발주", "반출"
TAX_TYPES = ("과세", "면세", "영세")
JET_FEE_TYPES = ("입출고비", "배송비")
# Account-level fees (not rows of a report): each is a total of the settlement group in Wing's
# status answer (REAL-PORTALS.md §4), under the field named here.
JET_ACCOUNT_FEE_FIELDS = {
    "보관비": "totalStorageFeeDeductionAmount",
    "반품 회수비": "totalCreturnReverseShippingFeeDeductionAmount",
    "반품 재입고비": "totalCreturnGradingFeeDeductionAmount",
    "반출비": "totalVreturnHandlingFeeDeductionAmount",
    "바코드": "totalBarcodeLabelingFeeDeductionAmount",
    "밀크런": "totalMilkRunDeductionAmount",
    "광고비": "totalAdSalesDeductionAmount",
}
SETTLEMENT_CYCLES = ("weekly", "monthly")  # 주정산 (Monday-Sunday, cut at month end) | 월정산
SIGNS = ("negative", "positive")  # how 정산취소 rows print their amounts
# How many download-list calls a Wing report request takes to be COMPLETED, unless the account says.
REPORT_READY_AFTER_POLLS = 3
LINK_VALID_SECONDS = 24 * 3600  # a presigned report link lives about a day


class ScenarioError(ValueError):
    """A scenario that cannot be served; the message starts with the bad field's path."""


# --- the model -------------------------------------------------------------------------


@dataclass(frozen=True)
class RocketLine:
    """One 입고상세내역 line; a 반출 line has a negative quantity."""

    kind: str  # 구분: 발주 | 반출
    po_no: str  # 번호 (발주번호)
    sku_id: str  # SKU번호
    sku_name: str  # SKU명
    moved_date: dt.date  # 입고/반출일자
    center: str  # 물류센터
    qty: int  # 수량
    unit_price: int  # 단가
    unit_supply: int  # 공급가액 (per unit)
    unit_tax: int  # 세액 (per unit)
    tax_type: str  # 세금타입

    @property
    def total_supply(self) -> int:  # 총공급가액
        return self.qty * self.unit_supply

    @property
    def total_tax(self) -> int:  # 총세액
        return self.qty * self.unit_tax

    @property
    def total_price(self) -> int:  # 총단가, the Rocket payment amount
        return self.total_supply + self.total_tax


@dataclass(frozen=True)
class RocketInvoice:
    """One 일반매입계정 row (a settlement invoice, 계산서) with its 입고상세내역 lines."""

    invoice_no: str  # 계산서번호 (vendorPaymentInfoSeq)
    written_date: dt.date  # 작성일자
    tax_invoice_confirmed: dt.date | None  # 세금계산서 확정일; None = 미처리된 세금계산서
    payment_date: dt.date  # 지급일자 (also 지급일 of its lines)
    first_payment_date: dt.date  # 1차 지급일
    first_payment_amount: int  # 1차 지급액
    tax_kind: str  # 과세유형
    order_type: str  # 발주유형
    settlement_type: str  # 정산유형
    issue_type: str  # 발행유형
    duplicate_lines: bool  # repeat a line in the Excel export, as overlapping downloads do
    lines: tuple[RocketLine, ...]

    @property
    def supply_amount(self) -> int:  # 공급가액
        return sum(line.total_supply for line in self.lines)

    @property
    def vat_amount(self) -> int:  # 부가가치세
        return sum(line.total_tax for line in self.lines)

    @property
    def payable_amount(self) -> int:  # 지급예정금액
        return self.supply_amount + self.vat_amount

    @property
    def second_payment_amount(self) -> int:  # 2차 지급액
        return self.payable_amount - self.first_payment_amount


@dataclass(frozen=True)
class SubAccount:
    username: str
    expires: dt.date


@dataclass(frozen=True)
class RocketAccount:
    account_id: str
    vendor_name: str  # 거래처명
    username: str  # the integration's sub-account (부계정)
    password: str
    sub_account_expires: dt.date
    sms_challenge: bool
    master_username: str | None
    master_password: str | None
    other_sub_accounts: tuple[SubAccount, ...]
    invoices: tuple[RocketInvoice, ...]
    # The sign of 반출 amounts in the 입고상세내역 export: 'negative' (as on the page) or
    # 'positive' (as two public export parsers expect, negating 반출 themselves).
    export_return_sign: str = "negative"
    sms_code: str = "123456"  # the code the SMS step accepts (인증번호 sent to the seller's phone)

    @property
    def has_pending_tax_invoice(self) -> bool:
        return any(inv.tax_invoice_confirmed is None for inv in self.invoices)


@dataclass(frozen=True)
class JetFee:
    type: str  # 입출고비 | 배송비
    amount: int  # 발생비용(A)
    discount: int  # 할인가(B)


@dataclass(frozen=True)
class JetV1Sale:
    date: dt.date  # 판매일
    option_id: str  # 옵션ID
    product_name: str  # 등록상품명
    option_name: str  # 옵션명
    qty: int  # 판매수량
    amount: int  # 판매금액, before coupons
    registration_type: str = "RFM"  # RFM (Rocket Growth) | NORMAL (seller-shipped)


@dataclass(frozen=True)
class JetV1Option:
    """An option 판매분석 lists every day, with zero sales on the days it sold nothing (REAL-PORTALS.md §6)."""

    option_id: str
    product_name: str
    option_name: str
    registration_type: str = "RFM"


REGISTRATION_TYPES = ("RFM", "NORMAL")


@dataclass(frozen=True)
class JetV2Order:
    order_id: str  # 주문ID
    option_id: str  # 옵션ID
    sku_id: str  # SKU ID
    product_name: str  # 등록상품명
    recognized_date: dt.date  # 매출인식일
    unit_price: int  # 판매가(A)
    qty: int  # 판매수량(B)
    coupang_discount: int  # 쿠팡지원할인(C)
    instant_coupon: int  # 즉시할인쿠폰(D)
    download_coupon: int  # 다운로드쿠폰(E)
    commission_rate: Decimal  # 판매수수료율(%,VAT별도)
    fees: tuple[JetFee, ...]
    cancelled_date: dt.date | None
    order_date: dt.date  # 주문일 (WAREHOUSING_SHIPPING)
    product_id: str  # 등록상품 ID
    category_id: str  # 카테고리ID
    shipment_id: str  # 배송ID
    package_size: str  # 개별포장 상품 사이즈
    center: str  # 물류센터
    option_name: str = ""  # 옵션명
    cancelled_qty: int = 0  # how many of qty the cancellation takes back (qty for a full one)

    @property
    def sales_amount(self) -> int:  # 판매액(A*B)
        return self.unit_price * self.qty

    @property
    def revenue_amount(self) -> int:  # 매출금액(A*B-C)
        return self.sales_amount - self.coupang_discount

    @property
    def seller_coupon(self) -> int:  # 판매자할인쿠폰(D+E)
        return self.instant_coupon + self.download_coupon

    @property
    def commission(self) -> int:  # 판매수수료, rounded down to whole won
        return int((self.commission_rate * self.revenue_amount / 100).to_integral_value(ROUND_FLOOR))

    @property
    def commission_vat(self) -> int:  # 판매수수료 VAT, 10 % rounded down
        return int((Decimal(self.commission) / 10).to_integral_value(ROUND_FLOOR))

    @property
    def settlement_amount(self) -> int:  # 정산대상액: what the seller is paid for the order
        return self.revenue_amount - self.seller_coupon - self.commission - self.commission_vat

    def cancelled_part(self) -> JetV2Order:
        """The part a (partial) cancellation takes back, as an order of cancelled_qty units: amounts
        pro rata, rounded down, except a full cancellation, which takes back everything."""
        if self.cancelled_qty == self.qty:
            return self

        def share(amount: int) -> int:
            return amount * self.cancelled_qty // self.qty

        return replace(self, qty=self.cancelled_qty, coupang_discount=share(self.coupang_discount),
                       instant_coupon=share(self.instant_coupon), download_coupon=share(self.download_coupon),
                       fees=tuple(replace(f, amount=share(f.amount), discount=share(f.discount)) for f in self.fees))


@dataclass(frozen=True)
class JetAccountFee:
    date: dt.date  # the day it is charged: it counts in the settlement group holding that day
    type: str  # 보관비 and the like (a key of JET_ACCOUNT_FEE_FIELDS)
    amount: int


@dataclass(frozen=True)
class JetAccount:
    account_id: str
    username: str
    password: str
    version: int  # the integration version of this account: 1 or 2
    sms_challenge: bool
    v1_sales: tuple[JetV1Sale, ...]
    v2_orders: tuple[JetV2Order, ...]
    account_fees: tuple[JetAccountFee, ...]
    report_ready_after_polls: int  # download-list calls until a requested report is COMPLETED
    settlement_cycle: str = "weekly"  # weekly (주정산) | monthly (월정산)
    cancellation_sign: str = "negative"  # the sign 정산취소 rows print their amounts with
    expired_links: int = 0  # the first N report links Wing hands out have already expired
    link_valid_seconds: int = LINK_VALID_SECONDS
    additional_cost_column: bool = True  # WAREHOUSING_SHIPPING has the 추가비용 column
    unit_columns: bool = False  # WAREHOUSING_SHIPPING has 단품 판매가 and 단품 기준 구매 수량
    v1_amount_field: str = "totalGmv"  # the GMV field of vi-detail-search's metrics
    v1_options: tuple[JetV1Option, ...] = ()  # listed by 판매분석 every day, sold or not
    vendor_id: str = ""  # Wing's vendorId (업체코드); the account_id when not given
    sms_code: str = "123456"  # the code the SMS step accepts

    @property
    def vendor(self) -> str:
        return self.vendor_id or self.account_id


@dataclass(frozen=True)
class SessionRules:
    """How long sign-ons last and what the realm remembers (scenario ``sessions``).

    Defaults from REAL-PORTALS.md §1: a portal session about 1 h, Keycloak's about 12 h; only
    one seller signed on at a time. How long a device stays trusted after its SMS step is
    not public: 30 days is a setting.
    """

    portal_seconds: float = 3600.0  # the portal's session cookie (Supplier Hub's / Wing's)
    sso_seconds: float = 43200.0  # Keycloak's KEYCLOAK_SESSION: renews the portal session without the password
    device_trust_days: int = 30  # the device cookie set after a passed SMS step spares the step this long
    one_seller_per_address: bool = True  # a password sign-on ends other sellers' sessions from the same address
    # The portal sessions and Keycloak's identity are browser-session cookies (no expiry), so a new
    # browser process is signed out (REAL-PORTALS.md §6, OH). False gives them lifetimes a profile keeps.
    browser_session_cookies: bool = True
    # Whether the device cookie outlives the browser: not public; a persistent cookie by default,
    # as the peers' "reuse a profile a person signed on in" suggests.
    device_trust_persistent: bool = True


def _default_challenge_seconds() -> float:
    """The sign-on challenge's length when a scenario does not set it: the record's ~16 s, or
    ``SANDBOX_CHALLENGE_SECONDS`` (the tests scale it down)."""
    raw = os.environ.get("SANDBOX_CHALLENGE_SECONDS", "")
    return float(raw) if raw.strip() else RECORDED_CHALLENGE_SECONDS


@dataclass(frozen=True)
class BotProtection:
    """The defences in front of both portals (scenario ``bot_protection``; sandbox README, docs/portals.md).

    ``wall``: an Akamai-like sensor on every page of the portals and the sign-on: a client without a
    passed sensor cookie (``_abck``) gets a script that reports ``navigator.webdriver``, the user agent
    and properties headless builds lack; a flagged client is answered 'Access Denied' (403), and so is
    any request that is not a page load (plain HTTP, an API call) before the sensor passed.
    ``challenge_seconds``: how long the sensor takes on the sign-on's origin (the recorded ~16 s).
    ``bind_to_client``: the sensor cookie and the sessions are bound to the client that made them
    (address and user agent, as Cloudflare's ``cf_clearance`` is): replayed elsewhere, they are refused.
    A scenario turns one off only to test something else, and says so.
    """

    wall: bool = True
    challenge_seconds: float = field(default_factory=_default_challenge_seconds)
    bind_to_client: bool = True


# How the live Wing fails (REAL-PORTALS.md §6, OH): status/api answered one call in 32 in one
# recorded session, recovering after 22-46 s; about one request in five got a 403 in the afternoon.
RECORDED_STATUS_FAILURE_SHARE = 31 / 32
RECORDED_STATUS_FAILURE_SECONDS = 40.0
RECORDED_FORBIDDEN_SHARE = 0.2
# How long request-download answers duplicateRequest to a repeat: unknown (OH backs off 15 min).
DUPLICATE_REQUEST_SECONDS = 900.0
GROUP_KEY_DATES = ("compact", "dashes")  # 20260406 (as LM reads it) | 2026-04-06 (a live value, OH)


@dataclass(frozen=True)
class StatusFailures:
    """status/api fails for ``window_seconds`` from the first call of each session: that share of the
    calls (deterministically: 31 in 32 fail, the 32nd, 64th, ... answer) is a fast HTTP 500 whose body
    is the signed-in page; then it answers."""

    share: float = RECORDED_STATUS_FAILURE_SHARE
    window_seconds: float = RECORDED_STATUS_FAILURE_SECONDS


@dataclass(frozen=True)
class WingBehaviour:
    """How the scenario's Wing fails and writes its values (scenario ``wing``; sandbox README).

    Each failure is off unless the scenario names it; named, its defaults are the record's.
    ``forbidden_share``: that share of Wing's API calls (deterministically: 0.2 = every fifth) answers 403
    (not a bot wall: a Spring error body). ``duplicate_request_seconds``: a request-download for the
    same report type and groups as one made that recently answers ``{"duplicateRequest": true}``
    (0 = never). ``group_key_dates``/``instant_milliseconds``: the two recorded formats of group keys
    and period instants."""

    status_failures: StatusFailures | None = None
    forbidden_share: float = 0.0
    duplicate_request_seconds: float = 0.0
    group_key_dates: str = "compact"
    instant_milliseconds: bool = True


@dataclass(frozen=True)
class Scenario:
    today: dt.date
    rocket_accounts: tuple[RocketAccount, ...]
    jet_accounts: tuple[JetAccount, ...]
    faults: tuple[Fault, ...]
    source: Mapping[str, Any] = field(repr=False, compare=False)
    bot_protection: BotProtection = field(default_factory=lambda: BotProtection())
    sessions: SessionRules = field(default_factory=lambda: SessionRules())
    wing: WingBehaviour = field(default_factory=lambda: WingBehaviour())

    @property
    def challenge_seconds(self) -> float:
        """Seconds the bot-protection challenge in front of the sign-on form takes (0 = none)."""
        return self.bot_protection.challenge_seconds if self.bot_protection.wall else 0.0

    def sms_code(self, username: str) -> str | None:
        """The SMS code of the account signing on as ``username`` (None: not a seller's username)."""
        for account in (*self.rocket_accounts, *self.jet_accounts):
            if account.username == username:
                return account.sms_code
        return None

    def rocket_account(self, account_id: str) -> RocketAccount:
        for account in self.rocket_accounts:
            if account.account_id == account_id:
                return account
        raise KeyError(account_id)

    def jet_account(self, account_id: str) -> JetAccount:
        for account in self.jet_accounts:
            if account.account_id == account_id:
                return account
        raise KeyError(account_id)


# --- validation ------------------------------------------------------------------------

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MISSING = object()


class _Obj:
    """Reads the fields of one JSON object, naming the field in every error."""

    def __init__(self, value: Any, path: str, allowed: tuple[str, ...]):
        if not isinstance(value, Mapping):
            raise ScenarioError(f"{path}: must be an object")
        # An unknown key is most often a typo of an optional field that would then be
        # silently ignored; keys starting with '_' are free for comments.
        unknown = sorted(k for k in value if k not in allowed and not str(k).startswith("_"))
        if unknown:
            raise ScenarioError(f"{self._join(path, unknown[0])}: unknown field "
                                f"(known: {', '.join(allowed)})")
        self.value, self.path = value, path

    @staticmethod
    def _join(path: str, key: str) -> str:
        return f"{path}.{key}" if path else key

    def at(self, key: str) -> str:
        return self._join(self.path, key)

    def get(self, key: str, check: Callable[[Any, str], Any], default: Any = _MISSING) -> Any:
        raw = self.value.get(key, _MISSING)
        if raw is _MISSING:
            if default is _MISSING:
                raise ScenarioError(f"{self.at(key)}: required field is missing")
            return default
        return check(raw, self.at(key))

    def text(self, key: str, default: Any = _MISSING) -> str:
        return self.get(key, _text, default)

    def date(self, key: str, default: Any = _MISSING) -> dt.date:
        return self.get(key, _date, default)

    def opt_date(self, key: str) -> dt.date | None:
        return self.get(key, lambda v, p: None if v is None else _date(v, p), None)

    def integer(self, key: str, default: Any = _MISSING, *, minimum: int | None = None) -> int:
        value = self.get(key, _integer, default)
        if minimum is not None and value < minimum:
            raise ScenarioError(f"{self.at(key)}: must be at least {minimum}")
        return value

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        return self.get(key, _boolean, default)

    def items(self, key: str, parse: Callable[[Any, str], Any], default: Any = _MISSING) -> tuple:
        def check(raw: Any, path: str) -> tuple:
            if not isinstance(raw, list):
                raise ScenarioError(f"{path}: must be a list")
            return tuple(parse(item, f"{path}[{i}]") for i, item in enumerate(raw))

        return self.get(key, check, default)


def _text(value: Any, path: str) -> str:
    # Ids are often typed as numbers in hand-written JSON; keep them as the text the portal shows.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(f"{path}: must be a non-empty string")
    return value


def _date(value: Any, path: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value  # YAML reads unquoted dates as dates
    if not isinstance(value, str) or not _DATE.match(value):
        raise ScenarioError(f"{path}: not a YYYY-MM-DD date")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ScenarioError(f"{path}: not a YYYY-MM-DD date") from None


def _integer(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(f"{path}: must be a whole number (won and quantities are integers)")
    return value


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{path}: must be true or false")
    return value


def _seconds(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 600:
        raise ScenarioError(f"{path}: must be a number of seconds from 0 to 600")
    return float(value)


def _choice(options: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(value: Any, path: str) -> str:
        if value not in options:
            raise ScenarioError(f"{path}: must be one of {', '.join(options)}")
        return value

    return check


def _rocket_line(raw: Any, path: str) -> RocketLine:
    o = _Obj(raw, path, ("kind", "po_no", "sku_id", "sku_name", "moved_date", "center", "qty",
                         "unit_price", "unit_supply", "unit_tax", "tax_type"))
    kind = o.get("kind", _choice((PURCHASE, RETURN)))
    qty = o.integer("qty")
    if kind == PURCHASE and qty <= 0:
        raise ScenarioError(f"{o.at('qty')}: a 발주 line needs a positive quantity")
    if kind == RETURN and qty >= 0:
        raise ScenarioError(f"{o.at('qty')}: a 반출 line needs a negative quantity")
    unit_supply = o.integer("unit_supply", minimum=0)
    unit_tax = o.integer("unit_tax", minimum=0)
    tax_type = o.get("tax_type", _choice(TAX_TYPES), "과세" if unit_tax else "면세")
    if tax_type != "과세" and unit_tax:
        raise ScenarioError(f"{o.at('unit_tax')}: must be 0 for tax_type {tax_type}")
    return RocketLine(
        kind=kind, po_no=o.text("po_no"), sku_id=o.text("sku_id"), sku_name=o.text("sku_name"),
        moved_date=o.date("moved_date"), center=o.text("center"), qty=qty,
        unit_price=o.integer("unit_price", unit_supply, minimum=0),
        unit_supply=unit_supply, unit_tax=unit_tax, tax_type=tax_type,
    )


def _rocket_invoice(raw: Any, path: str) -> RocketInvoice:
    o = _Obj(raw, path, ("invoice_no", "written_date", "tax_invoice_confirmed", "lines", "payment_date",
                         "first_payment_date", "first_payment_amount", "tax_kind", "order_type",
                         "settlement_type", "issue_type", "duplicate_lines"))
    written = o.date("written_date")
    if "tax_invoice_confirmed" not in o.value:
        raise ScenarioError(f"{o.at('tax_invoice_confirmed')}: required field is missing "
                            "(a date, or null for a pending tax invoice)")
    lines = o.items("lines", _rocket_line)
    if not lines:
        raise ScenarioError(f"{o.at('lines')}: an invoice needs at least one line")
    # Coupang pays vendors about 60 days after the invoice; the exact day does not matter here.
    payment_date = o.date("payment_date", written + dt.timedelta(days=60))
    invoice = RocketInvoice(
        invoice_no=o.text("invoice_no"), written_date=written,
        tax_invoice_confirmed=o.opt_date("tax_invoice_confirmed"),
        payment_date=payment_date, first_payment_date=o.date("first_payment_date", payment_date),
        first_payment_amount=0, tax_kind=o.text("tax_kind", "과세"), order_type=o.text("order_type", "일반"),
        settlement_type=o.text("settlement_type", "일반매입"), issue_type=o.text("issue_type", "역발행"),
        duplicate_lines=o.boolean("duplicate_lines", False), lines=lines,
    )
    first = o.integer("first_payment_amount", invoice.payable_amount)
    return replace(invoice, first_payment_amount=first)


def _sub_account(raw: Any, path: str) -> SubAccount:
    o = _Obj(raw, path, ("username", "expires"))
    return SubAccount(username=o.text("username"), expires=o.date("expires"))


def _rocket_account(raw: Any, path: str) -> RocketAccount:
    o = _Obj(raw, path, ("account_id", "vendor_name", "username", "password", "sub_account_expires",
                         "sms_challenge", "invoices", "master_username", "master_password",
                         "other_sub_accounts", "export_return_sign", "sms_code"))
    master_username = o.get("master_username", _text, None)
    master_password = o.get("master_password", _text, None)
    if (master_username is None) != (master_password is None):
        raise ScenarioError(f"{o.at('master_password' if master_username else 'master_username')}: "
                            "master_username and master_password go together")
    account = RocketAccount(
        account_id=o.text("account_id"), vendor_name=o.text("vendor_name"), username=o.text("username"),
        password=o.text("password"), sub_account_expires=o.date("sub_account_expires"),
        sms_challenge=o.boolean("sms_challenge", False), master_username=master_username,
        master_password=master_password, other_sub_accounts=o.items("other_sub_accounts", _sub_account, ()),
        invoices=o.items("invoices", _rocket_invoice, ()),
        export_return_sign=o.get("export_return_sign", _choice(("negative", "positive")), "negative"),
        sms_code=o.text("sms_code", "123456"),
    )
    _check_returns(account, path)
    return account


def _check_returns(account: RocketAccount, path: str) -> None:
    """A 반출 needs its 발주 (same po_no and sku_id) somewhere in the account, and no more
    may come back than was bought, or the sandbox would serve data the real site cannot."""
    bought: dict[tuple[str, str], int] = {}
    for inv in account.invoices:
        for line in inv.lines:
            if line.kind == PURCHASE:
                bought[(line.po_no, line.sku_id)] = bought.get((line.po_no, line.sku_id), 0) + line.qty
    returned: dict[tuple[str, str], int] = {}
    for i, inv in enumerate(account.invoices):
        for j, line in enumerate(inv.lines):
            if line.kind != RETURN:
                continue
            key = (line.po_no, line.sku_id)
            where = f"{path}.invoices[{i}].lines[{j}]"
            if key not in bought:
                raise ScenarioError(f"{where}.po_no: 반출 line has no 발주 line with po_no {line.po_no} "
                                    f"and sku_id {line.sku_id} in this account")
            returned[key] = returned.get(key, 0) - line.qty
            if returned[key] > bought[key]:
                raise ScenarioError(f"{where}.qty: returns {returned[key]} of po_no {line.po_no} "
                                    f"sku_id {line.sku_id} but only {bought[key]} were bought")


def _jet_fee(raw: Any, path: str) -> JetFee:
    o = _Obj(raw, path, ("type", "amount", "discount"))
    fee = JetFee(type=o.get("type", _choice(JET_FEE_TYPES)), amount=o.integer("amount", minimum=0),
                 discount=o.integer("discount", 0, minimum=0))
    if fee.discount > fee.amount:
        raise ScenarioError(f"{o.at('discount')}: more than the fee's amount")
    return fee


def _jet_v1_sale(raw: Any, path: str) -> JetV1Sale:
    o = _Obj(raw, path, ("date", "option_id", "product_name", "option_name", "qty", "amount", "registration_type"))
    return JetV1Sale(date=o.date("date"), option_id=o.text("option_id"), product_name=o.text("product_name"),
                     option_name=o.text("option_name"), qty=o.integer("qty", minimum=1),
                     amount=o.integer("amount", minimum=0),
                     registration_type=o.get("registration_type", _choice(REGISTRATION_TYPES), "RFM"))


def _jet_v1_option(raw: Any, path: str) -> JetV1Option:
    o = _Obj(raw, path, ("option_id", "product_name", "option_name", "registration_type"))
    return JetV1Option(option_id=o.text("option_id"), product_name=o.text("product_name"),
                       option_name=o.text("option_name"),
                       registration_type=o.get("registration_type", _choice(REGISTRATION_TYPES), "RFM"))


def _rate(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ScenarioError(f"{path}: must be a percentage between 0 and 100")
    return Decimal(str(value))  # via str so 10.8 stays 10.8, not its binary neighbour


def _jet_v2_order(raw: Any, path: str) -> JetV2Order:
    o = _Obj(raw, path, ("order_id", "option_id", "sku_id", "product_name", "recognized_date", "unit_price",
                         "qty", "coupang_discount", "instant_coupon", "download_coupon", "commission_rate",
                         "fees", "cancelled_date", "order_date", "product_id", "category_id", "shipment_id",
                         "package_size", "center", "option_name", "cancelled_qty"))
    order_id, option_id = o.text("order_id"), o.text("option_id")
    recognized = o.date("recognized_date")
    order = JetV2Order(
        order_id=order_id, option_id=option_id, sku_id=o.text("sku_id"),
        product_name=o.text("product_name"), recognized_date=recognized,
        unit_price=o.integer("unit_price", minimum=0), qty=o.integer("qty", minimum=1),
        coupang_discount=o.integer("coupang_discount", 0, minimum=0),
        instant_coupon=o.integer("instant_coupon", 0, minimum=0),
        download_coupon=o.integer("download_coupon", 0, minimum=0),
        commission_rate=o.get("commission_rate", _rate), fees=o.items("fees", _jet_fee, ()),
        cancelled_date=o.opt_date("cancelled_date"),
        order_date=o.date("order_date", recognized),
        # The report shows these ids and places; a scenario rarely cares, so they have stand-ins.
        product_id=o.text("product_id", f"1{option_id}"), category_id=o.text("category_id", "80285"),
        shipment_id=o.text("shipment_id", f"7{order_id}"), package_size=o.text("package_size", "소형"),
        center=o.text("center", "이천1"), option_name=o.text("option_name", "단일상품"),
    )
    cancelled_qty = o.integer("cancelled_qty", order.qty, minimum=1)
    if cancelled_qty > order.qty:
        raise ScenarioError(f"{o.at('cancelled_qty')}: more than qty ({order.qty})")
    if "cancelled_qty" in o.value and order.cancelled_date is None:
        raise ScenarioError(f"{o.at('cancelled_qty')}: given without a cancelled_date")
    order = replace(order, cancelled_qty=cancelled_qty if order.cancelled_date else 0)
    if order.coupang_discount + order.seller_coupon > order.sales_amount:
        raise ScenarioError(f"{path}: discounts exceed 판매액 (unit_price x qty)")
    if order.cancelled_date and order.cancelled_date < order.recognized_date:
        raise ScenarioError(f"{o.at('cancelled_date')}: before recognized_date")
    if order.order_date > order.recognized_date:
        raise ScenarioError(f"{o.at('order_date')}: after recognized_date")
    return order


def _jet_account_fee(raw: Any, path: str) -> JetAccountFee:
    o = _Obj(raw, path, ("date", "type", "amount"))
    return JetAccountFee(date=o.date("date"), type=o.get("type", _choice(tuple(JET_ACCOUNT_FEE_FIELDS))),
                         amount=o.integer("amount", minimum=0))


def _version(value: Any, path: str) -> int:
    if isinstance(value, bool) or value not in (1, 2):
        raise ScenarioError(f"{path}: must be 1 or 2")
    return int(value)


# The data each integration version is collected from; the other version's data may be
# there too (Wing shows both to every seller), but this part must be.
_VERSION_DATA = {1: ("v1_sales", "the sales page"), 2: ("v2_orders", "the settlement reports")}


def _jet_account(raw: Any, path: str) -> JetAccount:
    o = _Obj(raw, path, ("account_id", "username", "password", "version", "sms_challenge", "v1_sales",
                         "v2_orders", "account_fees", "report_ready_after_polls", "settlement_cycle",
                         "cancellation_sign", "expired_links", "link_valid_seconds", "additional_cost_column",
                         "unit_columns", "v1_amount_field", "vendor_id",
                         "sms_code", "v1_options"))
    version = o.get("version", _version)
    needed, source = _VERSION_DATA[version]
    if needed not in o.value:
        raise ScenarioError(f"{o.at(needed)}: required field is missing (a version {version} account is "
                            f"collected from {source}; [] for none)")
    account = JetAccount(
        account_id=o.text("account_id"), username=o.text("username"), password=o.text("password"),
        version=version, sms_challenge=o.boolean("sms_challenge", False),
        v1_sales=o.items("v1_sales", _jet_v1_sale, ()), v2_orders=o.items("v2_orders", _jet_v2_order, ()),
        account_fees=o.items("account_fees", _jet_account_fee, ()),
        report_ready_after_polls=o.integer("report_ready_after_polls", REPORT_READY_AFTER_POLLS, minimum=1),
        settlement_cycle=o.get("settlement_cycle", _choice(SETTLEMENT_CYCLES), "weekly"),
        cancellation_sign=o.get("cancellation_sign", _choice(SIGNS), "negative"),
        expired_links=o.integer("expired_links", 0, minimum=0),
        link_valid_seconds=o.integer("link_valid_seconds", LINK_VALID_SECONDS, minimum=1),
        additional_cost_column=o.boolean("additional_cost_column", True),
        unit_columns=o.boolean("unit_columns", False),
        v1_amount_field=o.text("v1_amount_field", "totalGmv"), vendor_id=o.text("vendor_id", ""),
        v1_options=o.items("v1_options", _jet_v1_option, ()),
        sms_code=o.text("sms_code", "123456"),
    )
    # The sales page has one row per sales date and option; two would be a page Wing cannot show.
    seen: dict[tuple[dt.date, str], int] = {}
    for i, sale in enumerate(account.v1_sales):
        key = (sale.date, sale.option_id)
        if key in seen:
            raise ScenarioError(f"{o.at('v1_sales')}[{i}]: duplicate date {sale.date} and option_id "
                                f"{sale.option_id} (also at {o.at('v1_sales')}[{seen[key]}])")
        seen[key] = i
    _unique([(f"{o.at('v1_options')}[{i}].option_id", option.option_id)
             for i, option in enumerate(account.v1_options)], "option_id")
    return account


def _fault(raw: Any, path: str) -> Fault:
    try:
        return parse_fault(raw, path)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


def _unique(values: list[tuple[str, str]], what: str) -> None:
    seen: dict[str, str] = {}
    for path, value in values:
        if value in seen:
            raise ScenarioError(f"{path}: duplicate {what} {value!r} (also at {seen[value]})")
        seen[value] = path


def _lifetime(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ScenarioError(f"{path}: must be a positive number of seconds")
    return float(value)


def _session_rules(raw: Any, path: str) -> SessionRules:
    o = _Obj(raw, path, ("portal_seconds", "sso_seconds", "device_trust_days", "one_seller_per_address",
                         "browser_session_cookies", "device_trust_persistent"))
    default = SessionRules()
    rules = SessionRules(
        portal_seconds=o.get("portal_seconds", _lifetime, default.portal_seconds),
        sso_seconds=o.get("sso_seconds", _lifetime, default.sso_seconds),
        device_trust_days=o.integer("device_trust_days", default.device_trust_days, minimum=0),
        one_seller_per_address=o.boolean("one_seller_per_address", default.one_seller_per_address),
        browser_session_cookies=o.boolean("browser_session_cookies", default.browser_session_cookies),
        device_trust_persistent=o.boolean("device_trust_persistent", default.device_trust_persistent))
    return rules


def _bot_protection(raw: Any, path: str) -> BotProtection:
    o = _Obj(raw, path, ("wall", "challenge_seconds", "bind_to_client"))
    default = BotProtection()
    return BotProtection(wall=o.boolean("wall", default.wall),
                         challenge_seconds=o.get("challenge_seconds", _seconds, default.challenge_seconds),
                         bind_to_client=o.boolean("bind_to_client", default.bind_to_client))


def _share(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ScenarioError(f"{path}: must be a share from 0 to below 1 (e.g. 0.2)")
    return float(value)


def _positive_seconds(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 86400:
        raise ScenarioError(f"{path}: must be a positive number of seconds (at most 86400)")
    return float(value)


def _status_failures(raw: Any, path: str) -> StatusFailures:
    o = _Obj(raw, path, ("share", "window_seconds"))
    return StatusFailures(share=o.get("share", _share, RECORDED_STATUS_FAILURE_SHARE),
                          window_seconds=o.get("window_seconds", _positive_seconds, RECORDED_STATUS_FAILURE_SECONDS))


def _wing_behaviour(raw: Any, path: str) -> WingBehaviour:
    o = _Obj(raw, path, ("status_failures", "forbidden", "duplicate_requests", "group_key_dates",
                         "instant_milliseconds"))
    forbidden = o.get("forbidden", lambda v, p: _Obj(v, p, ("share",)), None)
    duplicates = o.get("duplicate_requests", lambda v, p: _Obj(v, p, ("window_seconds",)), None)
    return WingBehaviour(
        status_failures=o.get("status_failures", _status_failures, None),
        forbidden_share=forbidden.get("share", _share, RECORDED_FORBIDDEN_SHARE) if forbidden else 0.0,
        duplicate_request_seconds=(duplicates.get("window_seconds", _positive_seconds, DUPLICATE_REQUEST_SECONDS)
                                   if duplicates else 0.0),
        group_key_dates=o.get("group_key_dates", _choice(GROUP_KEY_DATES), "compact"),
        instant_milliseconds=o.boolean("instant_milliseconds", True))


def parse_scenario(raw: Any) -> Scenario:
    """Validate a decoded scenario document."""
    top = _Obj(raw, "", ("today", "rocket", "jet", "faults", "bot_protection", "sessions", "wing"))
    sessions = top.get("sessions", _session_rules, SessionRules())
    bot_protection = top.get("bot_protection", _bot_protection, BotProtection())
    wing = top.get("wing", _wing_behaviour, WingBehaviour())
    rocket = top.get("rocket", lambda v, p: _Obj(v, p, ("accounts",)), None)
    jet = top.get("jet", lambda v, p: _Obj(v, p, ("accounts",)), None)
    rocket_accounts = rocket.items("accounts", _rocket_account, ()) if rocket else ()
    jet_accounts = jet.items("accounts", _jet_account, ()) if jet else ()

    _unique([(f"rocket.accounts[{i}].account_id", a.account_id) for i, a in enumerate(rocket_accounts)],
            "account_id")
    _unique([(f"jet.accounts[{i}].account_id", a.account_id) for i, a in enumerate(jet_accounts)], "account_id")
    # One sign-on serves every Rocket account, so a username picks exactly one login.
    logins = []
    for i, a in enumerate(rocket_accounts):
        logins.append((f"rocket.accounts[{i}].username", a.username))
        if a.master_username:
            logins.append((f"rocket.accounts[{i}].master_username", a.master_username))
        logins += [(f"rocket.accounts[{i}].other_sub_accounts[{j}].username", s.username)
                   for j, s in enumerate(a.other_sub_accounts)]
    _unique(logins, "username")
    _unique([(f"jet.accounts[{i}].username", a.username) for i, a in enumerate(jet_accounts)], "username")
    _unique([(f"rocket.accounts[{i}].invoices[{j}].invoice_no", inv.invoice_no)
             for i, a in enumerate(rocket_accounts) for j, inv in enumerate(a.invoices)], "invoice_no")
    for i, a in enumerate(jet_accounts):
        # An order and option may have rows on several 매출인식일 (one entry each), never two on one day.
        _unique([(f"jet.accounts[{i}].v2_orders[{j}].order_id", f"{o.order_id}/{o.option_id}/{o.recognized_date}")
                 for j, o in enumerate(a.v2_orders)], "order_id/option_id/recognized_date")

    return Scenario(
        today=top.date("today"), rocket_accounts=rocket_accounts, jet_accounts=jet_accounts,
        faults=top.items("faults", _fault, ()), source=raw, bot_protection=bot_protection,
        sessions=sessions, wing=wing,
    )


def load_scenario(source: str | Path | Mapping[str, Any] | Scenario) -> Scenario:
    """A validated scenario from a JSON (or YAML) file path, a decoded dict, or a Scenario."""
    if isinstance(source, Scenario):
        return source
    if isinstance(source, Mapping):
        return parse_scenario(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario file ({exc.strerror})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ScenarioError(f"{path}: YAML scenarios need PyYAML; use JSON") from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ScenarioError(f"{path}: not valid YAML ({exc})") from None
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{path}: not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    return parse_scenario(raw)
