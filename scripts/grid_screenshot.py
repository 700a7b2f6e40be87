"""Saves a screenshot of one collection run in the Airflow UI: its Grid (every task group open) beside the
run's task instances by account (each one's label, state and note icon).

    python scripts/grid_screenshot.py --url http://localhost:8080 --run-id RUN_ID \\
        [--dag coupang_rocket_sales] [--user admin] [--password PW | --airflow-home DIR] \\
        [--out docs/grid-blocked-and-failed.png]

Against a running Airflow (``make airflow``, or the stack of
``tests/integration/test_scheduler_faults.py``, which calls ``grid_screenshot`` when
``GRID_SCREENSHOT`` names the file: that run has a blocked seller and a portal failure side by side).
Headless Chromium through Selenium, signed in with Airflow's own login page; the password is read from
the Simple auth manager's generated file under ``--airflow-home`` when not given.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]


def grid_screenshot(url: str, user: str, password: str, run_id: str, out: Path, *,
                    dag_id: str = "coupang_rocket_sales", expect: tuple[str, ...] = (),
                    size: tuple[int, int] = (1680, 1400)) -> Path:
    """Sign in, open the run's page, open the Grid's task groups, sort the instances by account and save
    the window as ``out``.
    ``expect``: texts (say, the accounts) the page must show before the picture is taken."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from coupang_sales.portal.browser import open_browser

    with tempfile.TemporaryDirectory() as downloads:
        browser = open_browser(Path(downloads), headless=True)
        try:
            browser.set_window_size(*size)
            wait = WebDriverWait(browser, 60)
            browser.get(f"{url}/auth/login")
            wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys(user)
            browser.find_element(By.NAME, "password").send_keys(password)
            browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            wait.until(lambda d: "/auth/login" not in d.current_url)
            browser.get(f"{url}/dags/{dag_id}/runs/{quote(run_id, safe='')}")
            body = lambda d: d.find_element(By.TAG_NAME, "body").text  # noqa: E731
            wait.until(lambda d: all(text in body(d) for text in expect) and "collect" in body(d))
            # every task of the collect group in the Grid, and the run's instances by account
            browser.find_element(By.CSS_SELECTOR, "button[aria-label='Expand all task groups']").click()
            for sort in browser.find_elements(By.CSS_SELECTOR, "button[aria-label='sort']"):
                if sort.text.strip() == "Map Index":
                    sort.click()
                    break
            time.sleep(2)  # the Grid draws its cells after the data arrives
            out.parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(out))
        finally:
            browser.quit()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://localhost:8080")
    parser.add_argument("--dag", default="coupang_rocket_sales")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password")
    parser.add_argument("--airflow-home", type=Path, default=ROOT / ".local" / "airflow")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "grid-blocked-and-failed.png")
    args = parser.parse_args()
    password = args.password
    if password is None:
        generated = args.airflow_home / "simple_auth_manager_passwords.json.generated"
        password = json.loads(generated.read_text())[args.user]
    print(grid_screenshot(args.url, args.user, password, args.run_id, args.out, dag_id=args.dag))
    return 0


if __name__ == "__main__":
    sys.exit(main())
