"""The sandbox's stand-in for the cloud storage Wing's report links point at: a second origin with presigned links.

Wing's ``download/api/v2`` answers ``{"url": ...}``, a presigned link on another host, valid
about a day, fetched with a plain GET and no portal cookies (REAL-PORTALS.md §4). Here the
second origin is another port of the sandbox; a link carries an S3-like query (date, lifetime,
signature) and an expired or tampered one is a 403 with an S3-like XML error. The portal's
cookies are neither needed nor looked at. Wing faults apply to it too (match on
``/wing-settlement-reports/``), so a broken download can be injected where the file is served.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.faults import broken_body, change_header, hold
from sandbox.state import ReportRequest, SandboxState

PREFIX = "/wing-settlement-reports"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
STORAGE_FAULT_KINDS = frozenset({"http_500", "timeout", "broken_download", "changed_header"})


def _signature(state: SandboxState, path: str, stamp: str, expires: int) -> str:
    return hmac.new(state.storage_secret, f"{path}\n{stamp}\n{expires}".encode(), hashlib.sha256).hexdigest()


def file_name(report: ReportRequest) -> str:
    return f"{report.account_id}-{report.report_type}-{report.locale}-{report.request_id}.xlsx"


def presigned_url(state: SandboxState, base_url: str, vendor_id: str, report: ReportRequest, *,
                  valid_seconds: int, expired: bool = False) -> str:
    """A link to the report's file on the storage origin; ``expired`` makes one whose lifetime is already over."""
    now = time.time()
    signed_at = now - valid_seconds - 60 if expired else now
    stamp = dt.datetime.fromtimestamp(signed_at, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = f"{PREFIX}/{vendor_id}/{report.request_id}/{quote(file_name(report))}"
    query = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Date": stamp, "X-Amz-Expires": str(valid_seconds),
             "X-Amz-Signature": _signature(state, path, stamp, valid_seconds)}
    return f"{base_url}{path}?{urlencode(query)}"


def _s3_error(code: str, message: str, status: int) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(body, status_code=status, media_type="application/xml")


def create_storage_app(state: SandboxState, render_report: Any) -> FastAPI:
    """The storage origin; ``render_report(report) -> bytes`` builds a report's file."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def faults_and_log(request: Request, call_next: Any) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        fault = state.faults.take("wing", target, sign_on=False, kinds=STORAGE_FAULT_KINDS)
        response = None
        if fault is not None:
            if fault.kind == "timeout":
                await hold(fault.delay_seconds, state.stopping)
            elif fault.kind == "http_500":
                response = Response("Internal Server Error", status_code=500, media_type="text/plain")
            elif fault.kind in ("broken_download", "changed_header"):
                inner = await call_next(request)
                body = b"".join([chunk async for chunk in inner.body_iterator])
                body = (broken_body(body, fault.mode) if fault.kind == "broken_download"
                        else change_header(body, fault.column, fault.rename_to))
                headers = {k: v for k, v in inner.headers.items() if k.lower() != "content-length"}
                response = Response(body, status_code=inner.status_code, headers=headers)
        if response is None:
            response = await call_next(request)
        with state.lock:
            state.storage_requests.append({"method": request.method, "path": request.url.path,
                                           "cookies": sorted(request.cookies), "status": response.status_code})
        return response

    @app.get(PREFIX + "/{vendor_id}/{request_id}/{name}")
    def get_object(request: Request, vendor_id: str, request_id: str, name: str) -> Response:
        query = request.query_params
        stamp, expires, signature = query.get("X-Amz-Date", ""), query.get("X-Amz-Expires", ""), \
            query.get("X-Amz-Signature", "")
        path = f"{PREFIX}/{vendor_id}/{request_id}/{quote(name)}"
        if not (stamp and expires.isdigit() and signature) or not hmac.compare_digest(
                signature, _signature(state, path, stamp, int(expires))):
            return _s3_error("SignatureDoesNotMatch", "The request signature we calculated does not match "
                                                      "the signature you provided.", 403)
        try:
            signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            return _s3_error("AuthorizationQueryParametersError", "X-Amz-Date must be in the ISO8601 format", 400)
        if time.time() > signed_at + int(expires):
            return _s3_error("AccessDenied", "Request has expired", 403)
        report = state.report_requests.get(int(request_id)) if request_id.isdigit() else None
        if report is None or file_name(report) != name:
            return _s3_error("NoSuchKey", "The specified key does not exist.", 404)
        return Response(render_report(report), media_type=XLSX,
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})

    return app
