"""Benchmark 2: browser extraction against plain HTTP after login.

    .venv/bin/python bench/bench_extraction.py [--invoices 30] [--lines 100] [--repeat 3] [--variants ...]

One Rocket account in the sandbox (served from its own process, so the client and the
server do not share a GIL) has ``--invoices`` invoices of ``--lines`` 입고상세내역 lines.
In the same run, alternating, ``--repeat`` times each:

- **browser**: the project's extraction exactly as the DAG's extract task runs it, with the
  default settings (``rocket_stages.extract``): start Chromium, sign on, list the invoices at
  일반매입계정, and read every 입고상세내역 from its pages (10 lines a page, fetched from inside
  the signed-on page; ``receive_detail_source: "pages"``, the default since issue #25);
- **plain HTTP**: the physical limit: with the cookies of an already signed-on browser,
  one ``requests.Session`` fetches the same list pages and the same 입고상세내역 pages, knowing
  their addresses, and nothing else (no browser start, no sign-on, no checks).

Three browser variants (``--variants``) are each measured against plain HTTP in the same run,
alternating: ``headed`` (under Xvfb, the DAG's default, pages paced by the portal setting
``pacing_seconds``, 0.2 s between groups of ``concurrency`` pages as deployed), ``unpaced`` (the same
with ``pacing_seconds`` 0: the browser's mechanics alone, since plain HTTP is not paced) and
``headless`` (what the live portals refuse; the figure of record before the posture changed).
Reports the median of each, their ratio (target <= 2), the marginal cost per invoice (target
<= 1.3x plain HTTP), the browser side's steps, the load average beside them, and checks both sides
read the same lines. The targets are the unpaced variant's: pacing is a courtesy the client pays by
design (REAL-PORTALS.md: 0.2-0.7 s between requests), not a cost of the browser.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from common import ROOT, Report

ACCOUNT = "V00000800"
USERNAME, PASSWORD = "sub_extract", "pw-sub_extract"
DAY = dt.date(2026, 3, 2)


def scenario(invoices: int, lines: int) -> dict:
    out = []
    for i in range(invoices):
        out.append({
            "invoice_no": f"7{i:07d}", "written_date": DAY.isoformat(),
            "tax_invoice_confirmed": (DAY + dt.timedelta(days=1)).isoformat(),
            "lines": [{"kind": "발주", "po_no": f"8{i:04d}{n:04d}", "sku_id": f"{70000 + n}",
                       "sku_name": f"벤치 상품 {n} 500g x {1 + n % 4}",
                       "moved_date": (DAY - dt.timedelta(days=1)).isoformat(),
                       "center": "이천1", "qty": 1 + n % 7, "unit_price": 12_100, "unit_supply": 11_000,
                       "unit_tax": 1_100} for n in range(lines)],
        })
    return {"today": (DAY + dt.timedelta(days=2)).isoformat(),
            # The plain-HTTP side replays the browser's cookies in another client, which the sandbox's bot wall
            # and client binding refuse (as the live sites do): both sides run without them here, so the ratio
            # is the cost of the browser's mechanics alone; bench_sign_ons.py measures the defences' cost.
            "bot_protection": {"wall": False, "bind_to_client": False},
            "rocket": {"accounts": [{"account_id": ACCOUNT, "vendor_name": "주식회사 추출", "username": USERNAME,
                                     "password": PASSWORD, "sub_account_expires": "2099-12-31",
                                     "invoices": out}]},
            "jet": {"accounts": []}}


class Sandbox:
    """``python -m sandbox`` in its own process."""

    def __init__(self, scenario_path: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "sandbox", "--scenario", str(scenario_path)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT / "include")})
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise SystemExit(f"the sandbox did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1].strip()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def timed_steps(session, into: dict[str, float]) -> None:
    """Wrap the session's steps to add their wall time to ``into`` (the bench's own instrumentation)."""
    for name in ("_browser", "login", "list_invoices", "read_receive_detail_pages"):
        method = getattr(session, name)

        def wrapper(*args, _method=method, _name=name, **kwargs):
            with common.timed(into, _name):
                return _method(*args, **kwargs)

        setattr(session, name, wrapper)


def browser_run(base_url: str, work: Path, invoices: int) -> tuple[float, dict[str, float], dict[str, str]]:
    from coupang_sales.model import Window
    from coupang_sales.rocket import stages as rocket_stages
    from coupang_sales.rocket.supplier_hub import SupplierHubSession

    staging = work / "browser"
    shutil.rmtree(staging, ignore_errors=True)
    steps: dict[str, float] = {}
    start = time.perf_counter()
    session = SupplierHubSession(base_url=base_url, username=USERNAME, password=PASSWORD,
                                 download_dir=work / "downloads")
    timed_steps(session, steps)
    with session:
        summary = rocket_stages.extract(session, account={"account_id": ACCOUNT}, window=Window(DAY, DAY),
                                        list_until=DAY, staging=staging)
    elapsed = time.perf_counter() - start
    if summary["invoices"] != invoices:
        raise SystemExit(f"the browser listed {summary['invoices']} invoices, not {invoices}")
    if summary["receive_detail_source"] != "pages":
        raise SystemExit(f"the extraction read {summary['receive_detail_source']}, not the pages (the default)")
    return elapsed, steps, {p.stem.removeprefix("receive_detail_"): json.loads(p.read_text(encoding="utf-8"))["rows"]
                            for p in staging.glob("receive_detail_*.json")}


def plain_http_run(base_url: str, cookies: list[dict], invoices: int) -> tuple[float, float, dict[str, list]]:
    """Returns the whole time, the time of the 입고상세내역 pages alone, and the lines read from them."""
    import re

    import requests

    from coupang_sales.portal.settings import load_settings

    settings = load_settings("supplier_hub")
    start = time.perf_counter()
    http = requests.Session()
    for cookie in cookies:
        http.cookies.set(cookie["name"], cookie["value"])
    numbers: list[str] = []
    page = 1
    while len(numbers) < invoices:
        response = http.get(f"{base_url}{settings.path('purchase_account')}", params={
            "page": page, "size": settings.page_size("purchase_account"), **settings.query("purchase_account"),
            "startDate": DAY.isoformat(), "endDate": DAY.isoformat()}, allow_redirects=False)
        response.raise_for_status()
        found = [n for n in re.findall(r"vendorPaymentInfoSeq=(\d+)&amp;cplbYn=N&amp;page=1", response.text)
                 if n not in numbers]
        if not found:
            break  # past the last page the portal serves the last page again
        numbers += found
        page += 1
    lines: dict[str, list] = {}
    pages_start = time.perf_counter()
    detail = f"{base_url}{settings.path('receive_detail')}"
    for number in numbers:
        query = {"vendorPaymentInfoSeq": number, **settings.query("receive_detail")}
        first = http.get(detail, params={**query, "page": 1}, allow_redirects=False)
        first.raise_for_status()
        total = int(re.search(r'name="totalCount" value="(\d+)"', first.text)[1])
        rows = table_rows(first.text)
        for page in range(2, -(-total // 10) + 1):
            more = http.get(detail, params={**query, "page": page, "totalCount": total}, allow_redirects=False)
            more.raise_for_status()
            rows += table_rows(more.text)
        lines[number] = rows
    end = time.perf_counter()
    if len(lines) != invoices:
        raise SystemExit(f"plain HTTP found {len(lines)} invoices, not {invoices}")
    return end - start, end - pages_start, lines


def table_rows(page: str) -> list[list[str]]:
    """The 입고상세내역 table's body rows as cell texts (whitespace collapsed), without the empty-header cells."""
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.heads: list[str] = []
            self.rows: list[list[str]] = []
            self.where, self.text = "", None

        def handle_starttag(self, tag, attrs):
            if tag in ("thead", "tbody"):
                self.where = tag
            elif tag == "tr" and self.where == "tbody":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.text = []

        def handle_data(self, data):
            if self.text is not None:
                self.text.append(data)

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.text is not None:
                cell = " ".join("".join(self.text).split())
                (self.heads if self.where == "thead" else self.rows[-1]).append(cell)
                self.text = None

    parser = Cells()
    parser.feed(page)
    return [[c for h, c in zip(parser.heads, row, strict=True) if h] for row in parser.rows]


def signed_on_cookies(base_url: str, work: Path) -> list[dict]:
    from coupang_sales.rocket.supplier_hub import SupplierHubSession

    with SupplierHubSession(base_url=base_url, username=USERNAME, password=PASSWORD,
                            download_dir=work / "cookies") as session:
        session.login()
        return session.driver.get_cookies()


# Each variant measured: (SELENIUM_HEADLESS, paced). "headed" is the DAG's default: headed under Xvfb, the
# pages paced by the portal setting pacing_seconds; "unpaced" is the same browser with pacing_seconds 0, the
# browser's mechanics alone (plain HTTP is not paced); "headless" is what the live portals refuse, the
# figure of record before the posture changed.
VARIANTS = {"headed": ("false", True), "unpaced": ("false", False), "headless": ("true", True)}
TARGETS = "unpaced"  # the targets compare the browser's mechanics with plain HTTP's


def with_pacing(paced: bool, before: str | None) -> str | None:
    """COUPANG_PORTAL_SETTINGS for a variant: as it was when paced, with pacing_seconds 0 when not."""
    if paced:
        return before
    return json.dumps({**json.loads(before or "{}"), "pacing_seconds": 0})


def main(argv: list[str] | None = None) -> Report:
    from coupang_sales.portal.settings import load_settings
    from coupang_sales.rocket import supplier_hub  # noqa: F401  (declares the portal's settings)

    parser = argparse.ArgumentParser(description="Browser extraction vs plain HTTP")
    parser.add_argument("--invoices", type=int, default=30)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", "--postures", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="headed under Xvfb (the DAG's default), paced as deployed; unpaced, the same "
                             "with pacing_seconds 0 (the targets' figure); headless, what the portals refuse")
    args = parser.parse_args(argv)
    pacing = load_settings("supplier_hub").pacing_seconds
    work = Path(tempfile.mkdtemp(prefix="coupang-bench-extraction-"))
    scenario_path = work / "scenario.json"
    scenario_path.write_text(json.dumps(scenario(args.invoices, args.lines), ensure_ascii=False))
    sandbox = Sandbox(scenario_path)
    report = Report("extraction", settings={"invoices": args.invoices, "lines": args.lines, "repeat": args.repeat,
                                            "variants": args.variants, "pacing_seconds": pacing})
    runs: dict[str, dict[str, list]] = {}
    before = {name: os.environ.get(name) for name in ("SELENIUM_HEADLESS", "COUPANG_PORTAL_SETTINGS")}
    try:
        base_url = sandbox.url
        cookies = signed_on_cookies(base_url, work)
        for _ in range(args.repeat):
            for variant in args.variants:  # alternating, so a slow moment of the machine hits each
                headless, paced = VARIANTS[variant]
                os.environ["SELENIUM_HEADLESS"] = headless
                settings = with_pacing(paced, before["COUPANG_PORTAL_SETTINGS"])
                if settings is None:
                    os.environ.pop("COUPANG_PORTAL_SETTINGS", None)
                else:
                    os.environ["COUPANG_PORTAL_SETTINGS"] = settings
                run = runs.setdefault(variant, {"browser": [], "http": [], "http_pages": [], "steps": [],
                                                "load": []})
                elapsed, steps, from_browser = browser_run(base_url, work, args.invoices)
                run["browser"].append(elapsed)
                run["steps"].append(steps)
                elapsed, pages, from_http = plain_http_run(base_url, cookies, args.invoices)
                run["http"].append(elapsed)
                run["http_pages"].append(pages)
                run["load"].append(os.getloadavg()[0])
                if from_browser != from_http:
                    raise SystemExit("the browser and plain HTTP read different 입고상세내역 lines")
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        sandbox.stop()
        shutil.rmtree(work, ignore_errors=True)
    for variant, run in runs.items():
        measured = variant == TARGETS
        load = f"1-min load average {min(run['load']):.1f}-{max(run['load']):.1f}"
        browser_s, http_s = statistics.median(run["browser"]), statistics.median(run["http"])
        report.add(f"{variant}: browser extraction (Chromium start + sign-on included)", browser_s, "s",
                   note=f"median of {args.repeat}, {load}")
        report.add(f"{variant}: plain HTTP after login, same list and 입고상세내역 pages", http_s, "s",
                   note=f"median of {args.repeat}")
        report.add(f"{variant}: browser / plain HTTP", browser_s / http_s, "x", "<= 2" if measured else None)
        step = {name: statistics.median(s.get(name, 0.0) for s in run["steps"])
                for name in ("_browser", "login", "list_invoices", "read_receive_detail_pages")}
        report.add(f"{variant}: browser step: Chromium start", step["_browser"], "s")
        report.add(f"{variant}: browser step: sign-on", step["login"], "s")
        report.add(f"{variant}: browser step: list (일반매입계정)", step["list_invoices"], "s")
        report.add(f"{variant}: browser step: {args.invoices} invoices' 입고상세내역 pages",
                   step["read_receive_detail_pages"], "s")
        report.add(f"{variant}: fixed cost per browser session (Chromium start + sign-on)",
                   step["_browser"] + step["login"], "s", note="paid once per account and run (the extract task)")
        per_browser = step["read_receive_detail_pages"] / args.invoices
        per_http = statistics.median(run["http_pages"]) / args.invoices
        report.add(f"{variant}: per invoice: browser", per_browser * 1000, "ms",
                   note=f"pacing_seconds {pacing:g} between groups of pages" if VARIANTS[variant][1]
                   else "pacing_seconds 0")
        report.add(f"{variant}: per invoice: plain HTTP", per_http * 1000, "ms", note="not paced")
        report.add(f"{variant}: per invoice: browser / plain HTTP", per_browser / per_http, "x",
                   "<= 1.3" if measured else None, note="the marginal cost, without the fixed cost")
    report.emit()
    return report


if __name__ == "__main__":
    main()
