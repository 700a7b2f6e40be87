"""Scenario files of the portal sandbox: loading, validation and the amounts derived from them."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import typing
from collections.abc import Callable, Mapping
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, PrivateAttr, ValidationError, model_validator

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


class At(ValueError):
    """A problem found by a model's own check, at ``path`` below the object checked ('' for the object
    itself, a field, or ``invoices[0].lines[1].qty``); ``{at}`` in the message is the object's path."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


# --- the values of a field: each check names what a good value is -------------------------

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _text(value: Any) -> str:
    # Ids are often typed as numbers in hand-written JSON; keep them as the text the portal shows.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value  # YAML reads unquoted dates as dates
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("not a YYYY-MM-DD date")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("not a YYYY-MM-DD date") from None


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number (won and quantities are integers)")
    return value


def _at_least(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if _integer(value) < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _number(low: float, high: float, message: str, *, low_open: bool = False, high_open: bool = False
            ) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(message)
        if not (low < value if low_open else low <= value) or not (value < high if high_open else value <= high):
            raise ValueError(message)
        return float(value)

    return check


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return check


def _rate(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValueError("must be a percentage between 0 and 100")
    return Decimal(str(value))  # via str so 10.8 stays 10.8, not its binary neighbour


def _version(value: Any) -> int:
    if isinstance(value, bool) or value not in (1, 2):
        raise ValueError("must be 1 or 2")
    return int(value)


def _fault(value: Any) -> Fault:
    try:
        return parse_fault(value, "")
    except ValueError as exc:
        where, _, message = str(exc).partition(": ")
        raise At(where.lstrip("."), message) from None


Text = Annotated[str, PlainValidator(_text)]
Date = Annotated[dt.date, PlainValidator(_date)]
OptionalDate = Annotated[dt.date | None, PlainValidator(lambda v: None if v is None else _date(v))]
Int = Annotated[int, PlainValidator(_integer)]
Won = Annotated[int, PlainValidator(_at_least(0))]  # an amount or a count, not negative
Count = Annotated[int, PlainValidator(_at_least(1))]
Bool = Annotated[bool, PlainValidator(_boolean)]
Rate = Annotated[Decimal, PlainValidator(_rate)]
Version = Annotated[int, PlainValidator(_version)]
ChallengeSeconds = Annotated[float, PlainValidator(_number(0, 600, "must be a number of seconds from 0 to 600"))]
Lifetime = Annotated[float, PlainValidator(_number(0, float("inf"), "must be a positive number of seconds",
                                                   low_open=True))]
Share = Annotated[float, PlainValidator(_number(0, 1, "must be a share from 0 to below 1 (e.g. 0.2)",
                                                high_open=True))]
PositiveSeconds = Annotated[float, PlainValidator(_number(0, 86400, "must be a positive number of seconds "
                                                                    "(at most 86400)", low_open=True))]
FaultValue = Annotated[Fault, PlainValidator(_fault)]


def one_of(*options: str) -> Any:
    return Annotated[str, PlainValidator(_choice(options))]


class Part(BaseModel):
    """An object of the scenario file: no field but its own (an unknown key is most often a typo of an
    optional field that would then be ignored silently); keys starting with '_' are free for comments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _without_comments(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping):
            return {k: v for k, v in raw.items() if not str(k).startswith("_")}
        return raw


def _unique(values: list[tuple[str, str]], what: str, *, within: bool = False) -> None:
    """Each value once; ``within`` a model's check, the paths are below the object checked."""
    seen: dict[str, str] = {}
    for path, value in values:
        if value in seen:
            raise At(path, f"duplicate {what} {value!r} (also at {'{at}.' if within else ''}{seen[value]})")
        seen[value] = path


# --- the model -------------------------------------------------------------------------


class RocketLine(Part):
    """One 입고상세내역 line; a 반출 line has a negative quantity."""

    kind: one_of(PURCHASE, RETURN)  # 구분: 발주 | 반출
    po_no: Text  # 번호 (발주번호)
    sku_id: Text  # SKU번호
    sku_name: Text  # SKU명
    moved_date: Date  # 입고/반출일자
    center: Text  # 물류센터
    qty: Int  # 수량
    unit_supply: Won  # 공급가액 (per unit)
    unit_tax: Won  # 세액 (per unit)
    unit_price: Won  # 단가; unit_supply unless given
    tax_type: one_of(*TAX_TYPES)  # 세금타입; 과세 with a tax, 면세 without, unless given

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping):
            raw = dict(raw)
            if "unit_supply" in raw:
                raw.setdefault("unit_price", raw["unit_supply"])
            raw.setdefault("tax_type", "과세" if raw.get("unit_tax") else "면세")
        return raw

    @model_validator(mode="after")
    def _signs_and_tax(self) -> RocketLine:
        if self.kind == PURCHASE and self.qty <= 0:
            raise At("qty", "a 발주 line needs a positive quantity")
        if self.kind == RETURN and self.qty >= 0:
            raise At("qty", "a 반출 line needs a negative quantity")
        if self.tax_type != "과세" and self.unit_tax:
            raise At("unit_tax", f"must be 0 for tax_type {self.tax_type}")
        return self

    @property
    def total_supply(self) -> int:  # 총공급가액
        return self.qty * self.unit_supply

    @property
    def total_tax(self) -> int:  # 총세액
        return self.qty * self.unit_tax

    @property
    def total_price(self) -> int:  # 총단가, the Rocket payment amount
        return self.total_supply + self.total_tax


class RocketInvoice(Part):
    """One 일반매입계정 row (a settlement invoice, 계산서) with its 입고상세내역 lines."""

    invoice_no: Text  # 계산서번호 (vendorPaymentInfoSeq)
    written_date: Date  # 작성일자
    tax_invoice_confirmed: OptionalDate  # 세금계산서 확정일; None = 미처리된 세금계산서
    lines: tuple[RocketLine, ...]
    # Coupang pays vendors about 60 days after the invoice; the exact day does not matter here.
    payment_date: Annotated[dt.date | None, PlainValidator(_date)] = None  # 지급일자 (also 지급일 of its lines)
    first_payment_date: Annotated[dt.date | None, PlainValidator(_date)] = None  # 1차 지급일: payment_date
    first_payment_amount: Annotated[int | None, PlainValidator(_integer)] = None  # 1차 지급액: all of it
    tax_kind: Text = "과세"  # 과세유형
    order_type: Text = "일반"  # 발주유형
    settlement_type: Text = "일반매입"  # 정산유형
    issue_type: Text = "역발행"  # 발행유형
    duplicate_lines: Bool = False  # repeat a line in the Excel export, as overlapping downloads do

    @model_validator(mode="before")
    @classmethod
    def _confirmed_or_null(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping) and "tax_invoice_confirmed" not in raw:
            raise At("tax_invoice_confirmed", "required field is missing (a date, or null for a pending tax invoice)")
        return raw

    @model_validator(mode="after")
    def _payments(self) -> RocketInvoice:
        if not self.lines:
            raise At("lines", "an invoice needs at least one line")
        payment_date = self.payment_date or self.written_date + dt.timedelta(days=60)
        return self.model_copy(update={
            "payment_date": payment_date, "first_payment_date": self.first_payment_date or payment_date,
            "first_payment_amount": self.payable_amount if self.first_payment_amount is None
            else self.first_payment_amount})

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


class SubAccount(Part):
    username: Text
    expires: Date


class RocketAccount(Part):
    account_id: Text
    vendor_name: Text  # 거래처명
    username: Text  # the integration's sub-account (부계정)
    password: Text
    sub_account_expires: Date
    sms_challenge: Bool = False
    master_username: Annotated[str | None, PlainValidator(_text)] = None
    master_password: Annotated[str | None, PlainValidator(_text)] = None
    other_sub_accounts: tuple[SubAccount, ...] = ()
    invoices: tuple[RocketInvoice, ...] = ()
    # The sign of 반출 amounts in the 입고상세내역 export: 'negative' (as on the page) or
    # 'positive' (as two public export parsers expect, negating 반출 themselves).
    export_return_sign: one_of("negative", "positive") = "negative"
    sms_code: Text = "123456"  # the code the SMS step accepts (인증번호 sent to the seller's phone)

    @model_validator(mode="after")
    def _master_and_returns(self) -> RocketAccount:
        if (self.master_username is None) != (self.master_password is None):
            raise At("master_password" if self.master_username else "master_username",
                     "master_username and master_password go together")
        self._check_returns()
        return self

    def _check_returns(self) -> None:
        """A 반출 needs its 발주 (same po_no and sku_id) somewhere in the account, and no more
        may come back than was bought, or the sandbox would serve data the real site cannot."""
        bought: dict[tuple[str, str], int] = {}
        for inv in self.invoices:
            for line in inv.lines:
                if line.kind == PURCHASE:
                    bought[(line.po_no, line.sku_id)] = bought.get((line.po_no, line.sku_id), 0) + line.qty
        returned: dict[tuple[str, str], int] = {}
        for i, inv in enumerate(self.invoices):
            for j, line in enumerate(inv.lines):
                if line.kind != RETURN:
                    continue
                key = (line.po_no, line.sku_id)
                where = f"invoices[{i}].lines[{j}]"
                if key not in bought:
                    raise At(f"{where}.po_no", f"반출 line has no 발주 line with po_no {line.po_no} "
                                               f"and sku_id {line.sku_id} in this account")
                returned[key] = returned.get(key, 0) - line.qty
                if returned[key] > bought[key]:
                    raise At(f"{where}.qty", f"returns {returned[key]} of po_no {line.po_no} "
                                             f"sku_id {line.sku_id} but only {bought[key]} were bought")

    @property
    def has_pending_tax_invoice(self) -> bool:
        return any(inv.tax_invoice_confirmed is None for inv in self.invoices)


class JetFee(Part):
    type: one_of(*JET_FEE_TYPES)  # 입출고비 | 배송비
    amount: Won  # 발생비용(A)
    discount: Won = 0  # 할인가(B)

    @model_validator(mode="after")
    def _discount_within_amount(self) -> JetFee:
        if self.discount > self.amount:
            raise At("discount", "more than the fee's amount")
        return self


REGISTRATION_TYPES = ("RFM", "NORMAL")


class JetV1Sale(Part):
    date: Date  # 판매일
    option_id: Text  # 옵션ID
    product_name: Text  # 등록상품명
    option_name: Text  # 옵션명
    qty: Count  # 판매수량
    amount: Won  # 판매금액, before coupons
    registration_type: one_of(*REGISTRATION_TYPES) = "RFM"  # RFM (Rocket Growth) | NORMAL (seller-shipped)


class JetV1Option(Part):
    """An option 판매분석 lists every day, with zero sales on the days it sold nothing (REAL-PORTALS.md §6)."""

    option_id: Text
    product_name: Text
    option_name: Text
    registration_type: one_of(*REGISTRATION_TYPES) = "RFM"


class JetV2Order(Part):
    order_id: Text  # 주문ID
    option_id: Text  # 옵션ID
    sku_id: Text  # SKU ID
    product_name: Text  # 등록상품명
    recognized_date: Date  # 매출인식일
    unit_price: Won  # 판매가(A)
    qty: Count  # 판매수량(B)
    coupang_discount: Won = 0  # 쿠팡지원할인(C)
    instant_coupon: Won = 0  # 즉시할인쿠폰(D)
    download_coupon: Won = 0  # 다운로드쿠폰(E)
    commission_rate: Rate  # 판매수수료율(%,VAT별도)
    fees: tuple[JetFee, ...] = ()
    cancelled_date: OptionalDate = None
    # The report shows these ids and places; a scenario rarely cares, so they have stand-ins.
    order_date: Date  # 주문일 (WAREHOUSING_SHIPPING); recognized_date unless given
    product_id: Text  # 등록상품 ID; 1 and the option_id unless given
    category_id: Text = "80285"  # 카테고리ID
    shipment_id: Text  # 배송ID; 7 and the order_id unless given
    package_size: Text = "소형"  # 개별포장 상품 사이즈
    center: Text = "이천1"  # 물류센터
    option_name: Text = "단일상품"  # 옵션명
    cancelled_qty: Count = 0  # how many of qty the cancellation takes back (qty for a full one)

    @model_validator(mode="before")
    @classmethod
    def _stand_ins(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping):
            raw = dict(raw)
            if "recognized_date" in raw:
                raw.setdefault("order_date", raw["recognized_date"])
            if "option_id" in raw:
                raw.setdefault("product_id", f"1{raw['option_id']}")
            if "order_id" in raw:
                raw.setdefault("shipment_id", f"7{raw['order_id']}")
        return raw

    @model_validator(mode="after")
    def _cancellation_and_discounts(self) -> JetV2Order:
        given = "cancelled_qty" in self.model_fields_set
        cancelled_qty = self.cancelled_qty if given else self.qty
        if cancelled_qty > self.qty:
            raise At("cancelled_qty", f"more than qty ({self.qty})")
        if given and self.cancelled_date is None:
            raise At("cancelled_qty", "given without a cancelled_date")
        if self.coupang_discount + self.seller_coupon > self.sales_amount:
            raise At("", "discounts exceed 판매액 (unit_price x qty)")
        if self.cancelled_date and self.cancelled_date < self.recognized_date:
            raise At("cancelled_date", "before recognized_date")
        if self.order_date > self.recognized_date:
            raise At("order_date", "after recognized_date")
        return self.model_copy(update={"cancelled_qty": cancelled_qty if self.cancelled_date else 0})

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

        return self.model_copy(update={
            "qty": self.cancelled_qty, "coupang_discount": share(self.coupang_discount),
            "instant_coupon": share(self.instant_coupon), "download_coupon": share(self.download_coupon),
            "fees": tuple(f.model_copy(update={"amount": share(f.amount), "discount": share(f.discount)})
                          for f in self.fees)})


class JetAccountFee(Part):
    date: Date  # the day it is charged: it counts in the settlement group holding that day
    type: one_of(*JET_ACCOUNT_FEE_FIELDS)  # 보관비 and the like (a key of JET_ACCOUNT_FEE_FIELDS)
    amount: Won


# The data each integration version is collected from; the other version's data may be
# there too (Wing shows both to every seller), but this part must be.
_VERSION_DATA = {1: ("v1_sales", "the sales page"), 2: ("v2_orders", "the settlement reports")}


class JetAccount(Part):
    account_id: Text
    username: Text
    password: Text
    version: Version  # the integration version of this account: 1 or 2
    sms_challenge: Bool = False
    v1_sales: tuple[JetV1Sale, ...] = ()
    v2_orders: tuple[JetV2Order, ...] = ()
    account_fees: tuple[JetAccountFee, ...] = ()
    # download-list calls until a requested report is COMPLETED
    report_ready_after_polls: Count = REPORT_READY_AFTER_POLLS
    settlement_cycle: one_of(*SETTLEMENT_CYCLES) = "weekly"  # weekly (주정산) | monthly (월정산)
    cancellation_sign: one_of(*SIGNS) = "negative"  # the sign 정산취소 rows print their amounts with
    expired_links: Won = 0  # the first N report links Wing hands out have already expired
    link_valid_seconds: Count = LINK_VALID_SECONDS
    additional_cost_column: Bool = True  # WAREHOUSING_SHIPPING has the 추가비용 column
    unit_columns: Bool = False  # WAREHOUSING_SHIPPING has 단품 판매가 and 단품 기준 구매 수량
    v1_amount_field: Text = "totalGmv"  # the GMV field of vi-detail-search's metrics
    v1_options: tuple[JetV1Option, ...] = ()  # listed by 판매분석 every day, sold or not
    vendor_id: Annotated[str, PlainValidator(_text)] = ""  # Wing's vendorId (업체코드); the account_id when not given
    sms_code: Text = "123456"  # the code the SMS step accepts

    @model_validator(mode="before")
    @classmethod
    def _data_of_its_version(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping) and type(raw.get("version")) is int and raw["version"] in _VERSION_DATA:
            needed, source = _VERSION_DATA[raw["version"]]
            if needed not in raw:
                raise At(needed, f"required field is missing (a version {raw['version']} account is "
                                 f"collected from {source}; [] for none)")
        return raw

    @model_validator(mode="after")
    def _one_row_per_day_and_option(self) -> JetAccount:
        # The sales page has one row per sales date and option; two would be a page Wing cannot show.
        seen: dict[tuple[dt.date, str], int] = {}
        for i, sale in enumerate(self.v1_sales):
            key = (sale.date, sale.option_id)
            if key in seen:
                raise At(f"v1_sales[{i}]", f"duplicate date {sale.date} and option_id {sale.option_id} "
                                           f"(also at {{at}}.v1_sales[{seen[key]}])")
            seen[key] = i
        _unique([(f"v1_options[{i}].option_id", option.option_id) for i, option in enumerate(self.v1_options)],
                "option_id", within=True)
        return self

    @property
    def vendor(self) -> str:
        return self.vendor_id or self.account_id


class SessionRules(Part):
    """How long sign-ons last and what the realm remembers (scenario ``sessions``).

    Defaults from REAL-PORTALS.md §1: a portal session about 1 h, Keycloak's about 12 h; only
    one seller signed on at a time. How long a device stays trusted after its SMS step is
    not public: 30 days is a setting.
    """

    portal_seconds: Lifetime = 3600.0  # the portal's session cookie (Supplier Hub's / Wing's)
    sso_seconds: Lifetime = 43200.0  # Keycloak's KEYCLOAK_SESSION: renews the portal session without the password
    device_trust_days: Won = 30  # the device cookie set after a passed SMS step spares the step this long
    one_seller_per_address: Bool = True  # a password sign-on ends other sellers' sessions from the same address
    # The portal sessions and Keycloak's identity are browser-session cookies (no expiry), so a new
    # browser process is signed out (REAL-PORTALS.md §6, OH). False gives them lifetimes a profile keeps.
    browser_session_cookies: Bool = True
    # Whether the device cookie outlives the browser: not public; a persistent cookie by default,
    # as the peers' "reuse a profile a person signed on in" suggests.
    device_trust_persistent: Bool = True


def _default_challenge_seconds() -> float:
    """The sign-on challenge's length when a scenario does not set it: the record's ~16 s, or
    ``SANDBOX_CHALLENGE_SECONDS`` (the tests scale it down)."""
    raw = os.environ.get("SANDBOX_CHALLENGE_SECONDS", "")
    return float(raw) if raw.strip() else RECORDED_CHALLENGE_SECONDS


class BotProtection(Part):
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

    wall: Bool = True
    challenge_seconds: ChallengeSeconds = Field(default_factory=_default_challenge_seconds)
    bind_to_client: Bool = True


# How the live Wing fails (REAL-PORTALS.md §6, OH): status/api answered one call in 32 in one
# recorded session, recovering after 22-46 s; about one request in five got a 403 in the afternoon.
RECORDED_STATUS_FAILURE_SHARE = 31 / 32
RECORDED_STATUS_FAILURE_SECONDS = 40.0
RECORDED_FORBIDDEN_SHARE = 0.2
# How long request-download answers duplicateRequest to a repeat: unknown (OH backs off 15 min).
DUPLICATE_REQUEST_SECONDS = 900.0
GROUP_KEY_DATES = ("compact", "dashes")  # 20260406 (as LM reads it) | 2026-04-06 (a live value, OH)


class StatusFailures(Part):
    """status/api fails for ``window_seconds`` from the first call of each session: that share of the
    calls (deterministically: 31 in 32 fail, the 32nd, 64th, ... answer) is a fast HTTP 500 whose body
    is the signed-in page; then it answers."""

    share: Share = RECORDED_STATUS_FAILURE_SHARE
    window_seconds: PositiveSeconds = RECORDED_STATUS_FAILURE_SECONDS


class Forbidden(Part):
    share: Share = RECORDED_FORBIDDEN_SHARE


class DuplicateRequests(Part):
    window_seconds: PositiveSeconds = DUPLICATE_REQUEST_SECONDS


class WingBehaviour(Part):
    """How the scenario's Wing fails and writes its values (scenario ``wing``; sandbox README).

    Each failure is off unless the scenario names it; named, its defaults are the record's.
    ``forbidden_share``: that share of Wing's API calls (deterministically: 0.2 = every fifth) answers 403
    (not a bot wall: a Spring error body). ``duplicate_request_seconds``: a request-download for the
    same report type and groups as one made that recently answers ``{"duplicateRequest": true}``
    (0 = never). ``group_key_dates``/``instant_milliseconds``: the two recorded formats of group keys
    and period instants."""

    status_failures: StatusFailures | None = None
    forbidden: Forbidden | None = None
    duplicate_requests: DuplicateRequests | None = None
    group_key_dates: one_of(*GROUP_KEY_DATES) = "compact"
    instant_milliseconds: Bool = True

    @property
    def forbidden_share(self) -> float:
        return self.forbidden.share if self.forbidden else 0.0

    @property
    def duplicate_request_seconds(self) -> float:
        return self.duplicate_requests.window_seconds if self.duplicate_requests else 0.0


class RocketSection(Part):
    accounts: tuple[RocketAccount, ...] = ()


class JetSection(Part):
    accounts: tuple[JetAccount, ...] = ()


class Scenario(Part):
    """A scenario file, validated: what the sandbox serves."""

    today: Date
    rocket: RocketSection | None = None
    jet: JetSection | None = None
    faults: tuple[FaultValue, ...] = ()
    bot_protection: BotProtection = Field(default_factory=BotProtection)
    sessions: SessionRules = Field(default_factory=SessionRules)
    wing: WingBehaviour = Field(default_factory=WingBehaviour)
    _source: Mapping[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_names(self) -> Scenario:
        rocket, jet = self.rocket_accounts, self.jet_accounts
        _unique([(f"rocket.accounts[{i}].account_id", a.account_id) for i, a in enumerate(rocket)], "account_id")
        _unique([(f"jet.accounts[{i}].account_id", a.account_id) for i, a in enumerate(jet)], "account_id")
        # One sign-on serves every Rocket account, so a username picks exactly one login.
        logins = []
        for i, a in enumerate(rocket):
            logins.append((f"rocket.accounts[{i}].username", a.username))
            if a.master_username:
                logins.append((f"rocket.accounts[{i}].master_username", a.master_username))
            logins += [(f"rocket.accounts[{i}].other_sub_accounts[{j}].username", s.username)
                       for j, s in enumerate(a.other_sub_accounts)]
        _unique(logins, "username")
        _unique([(f"jet.accounts[{i}].username", a.username) for i, a in enumerate(jet)], "username")
        _unique([(f"rocket.accounts[{i}].invoices[{j}].invoice_no", inv.invoice_no)
                 for i, a in enumerate(rocket) for j, inv in enumerate(a.invoices)], "invoice_no")
        for i, a in enumerate(jet):
            # An order and option may have rows on several 매출인식일 (one entry each), never two on one day.
            _unique([(f"jet.accounts[{i}].v2_orders[{j}].order_id",
                      f"{o.order_id}/{o.option_id}/{o.recognized_date}") for j, o in enumerate(a.v2_orders)],
                    "order_id/option_id/recognized_date")
        return self

    @property
    def source(self) -> Mapping[str, Any]:
        """The decoded document the scenario was read from."""
        return self._source

    @property
    def rocket_accounts(self) -> tuple[RocketAccount, ...]:
        return self.rocket.accounts if self.rocket else ()

    @property
    def jet_accounts(self) -> tuple[JetAccount, ...]:
        return self.jet.accounts if self.jet else ()

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


# --- validation messages -----------------------------------------------------------------


def _join(path: str, more: str) -> str:
    if not more:
        return path
    if not path or more.startswith("["):
        return path + more
    return f"{path}.{more}"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _fields_at(loc: tuple) -> list[str]:
    """The fields of the object at ``loc`` (the path of one of its keys)."""
    model: type[BaseModel] | None = Scenario
    for part in loc[:-1]:
        if isinstance(part, str) and model is not None and part in model.model_fields:
            model = _model_in(model.model_fields[part].annotation)
    return list(model.model_fields) if model is not None else []


def _scenario_error(exc: ValidationError) -> ScenarioError:
    """The first problem pydantic found, as ``path.to[0].field: what a good value is``."""
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    path = ""
    for part in loc:
        path = _join(path, f"[{part}]" if isinstance(part, int) else str(part))
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, At):
        return ScenarioError(f"{_join(path, cause.path)}: {str(cause).replace('{at}', path)}")
    kind = error["type"]
    if kind == "missing":
        message = "required field is missing"
    elif kind == "extra_forbidden":
        message = f"unknown field (known: {', '.join(_fields_at(loc))})"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = "must be an object"
    elif kind in ("tuple_type", "list_type"):
        message = "must be a list"
    elif isinstance(cause, Exception):
        message = str(cause)
    else:
        message = error["msg"]
    return ScenarioError(f"{path}: {message}")


def parse_scenario(raw: Any) -> Scenario:
    """Validate a decoded scenario document."""
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise _scenario_error(exc) from None
    scenario._source = raw
    return scenario


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
