"""The settings of Wing as a model: what ``jet/wing.json`` holds and a deployment may override."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from coupang_sales.portal.settings import (
    PortalDefaults,
    PortalSettingsModel,
    Seconds,
    SharedPaths,
    SharedWaits,
    Strict,
    declare,
)

Text = Annotated[str, Field(min_length=1)]
Positive = Annotated[float, Field(gt=0)]


class WingPaths(SharedPaths):
    home: str
    xsrf_resource: str
    status: str
    request_download: str
    download_list: str
    download: str
    vi_detail_search: str


class WingApi(Strict):
    locale: Text
    search_date_type: Text
    failed_statuses: list[Text]
    v1_registration_types: list[Text] = Field(min_length=1)
    v1_kept_registration_types: list[Text] = Field(min_length=1)
    v1_sort_by: Text
    v1_sort_order: Text


class WingFormats(Strict):
    v1_date: Text
    status_instant: Text


class WingWaits(SharedWaits):
    report: Positive
    report_poll: Positive
    report_poll_max: Seconds
    xsrf: Positive
    status_retry: Seconds
    forbidden_retry: Seconds
    retry_backoff: Positive
    retry_backoff_max: Seconds
    duplicate_backoff: Seconds
    duplicate_lookback: Seconds
    v1_page: Seconds
    v1_day: Seconds


class WingPageSizes(Strict):
    v1: Annotated[int, Field(ge=1)]
    v1_max: Annotated[int, Field(ge=1)]
    v1_max_pages: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _v1_within_its_max(self) -> WingPageSizes:
        if self.v1 > self.v1_max:
            raise ValueError(f"v1 ({self.v1}) is larger than v1_max ({self.v1_max})")
        return self


class WingFields(Strict):
    v1_amount: Text  # the GMV field of vi-detail-search's metrics


class WingSettings(PortalSettingsModel):
    portal: Literal["wing"]
    paths: WingPaths
    api: WingApi
    formats: WingFormats
    waits: WingWaits
    page_sizes: WingPageSizes
    fields: WingFields


WING_SETTINGS = declare(PortalDefaults("wing", Path(__file__).with_name("wing.json"), WingSettings))
