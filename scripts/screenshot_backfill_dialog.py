"""Takes docs/backfill-dialog.png: Airflow's own backfill dialog filled for "6–7 January" in Asia/Seoul.

    python scripts/screenshot_backfill_dialog.py [--out docs/backfill-dialog.png] [--from 2026-01-06 --to 2026-01-07]

A real ``airflow api-server`` (SimpleAuthManager, SQLite metadata in a temporary home, the project's DAGs
serialised) and a real Chromium through Selenium: sign in, set the UI's time zone to Asia/Seoul (User >
Timezone, kept in the browser's local storage), open ``coupang_rocket_sales``, Trigger > Backfill, enter
the range as docs/backfill.md says (the first date 00:00 to the last date 23:59), and wait for the
dialog's dry run to count the runs. Nothing is created (the dialog is not submitted). Everything started is stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "include")]

import local_stack  # noqa: E402

DAG_ID = "coupang_rocket_sales"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api_server_env(home: Path, port: int, password: str) -> dict[str, str]:
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    return {**os.environ, **local_stack.airflow_env(home),
            "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}/",
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(24),
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Seoul",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}


def start_api_server(env: dict[str, str], port: int, log) -> subprocess.Popen:
    for args in (["db", "migrate"], ["dags", "reserialize"]):
        subprocess.run(["airflow", *args], env=env, cwd=ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)
    process = subprocess.Popen(["airflow", "api-server", "--port", str(port), "--host", "127.0.0.1", "--workers",
                                "1", "--apps", "core"], env=env, cwd=ROOT, start_new_session=True, stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"airflow api-server exited {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2)
            return process
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("airflow api-server did not answer within 180 s") from None
            time.sleep(0.5)


def stop(process: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            pass


def fill_backfill_dialog(driver, url: str, password: str, first: dt.date, last: dt.date) -> str:
    """Sign in, set the UI's zone to Asia/Seoul and fill the backfill dialog; returns the dialog's text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 60)
    driver.get(f"{url}/auth/login")
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/auth/login" not in d.current_url)
    driver.execute_script("localStorage.setItem('timezone', JSON.stringify('Asia/Seoul'))")
    driver.get(f"{url}/dags/{DAG_ID}")
    wait.until(ec.element_to_be_clickable((By.XPATH, "//button[normalize-space()='Trigger']"))).click()
    wait.until(ec.element_to_be_clickable((By.XPATH, "//span[@data-part='item-text' and text()='Backfill']"))).click()
    pickers = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[role=dialog] [data-testid=datetime-input]"))
    for picker, (day, clock) in zip(pickers[:2], ((first, "00:00"), (last, "23:59")), strict=True):
        picker.click()  # a popover with the UI's zone, a Date (YYYY/MM/DD) and a Time (HH:mm) field
        popover = wait.until(ec.visibility_of_element_located(
            (By.CSS_SELECTOR, "[data-scope=popover][data-part=content][data-state=open]")))
        date_field, time_field = popover.find_elements(By.CSS_SELECTOR, "input[data-part=input]")[:2]
        for field, value in ((date_field, day.strftime("%Y/%m/%d")), (time_field, clock)):
            field.send_keys(Keys.CONTROL, "a")
            field.send_keys(value)
        popover.send_keys(Keys.ESCAPE)
        wait.until(ec.invisibility_of_element(popover))
    dialog = driver.find_element(By.XPATH, "//*[@role='dialog' and .//*[contains(text(), 'Run Backfill')]]")
    wait.until(lambda d: "will be triggered" in dialog.text)  # the dialog's dry run counted the runs
    time.sleep(1)
    return dialog.text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "backfill-dialog.png")
    parser.add_argument("--from", dest="first", type=dt.date.fromisoformat, default=dt.date(2026, 1, 6))
    parser.add_argument("--to", dest="last", type=dt.date.fromisoformat, default=dt.date(2026, 1, 7))
    args = parser.parse_args()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not reach the internet
    from coupang_sales.portal.browser import open_browser

    with tempfile.TemporaryDirectory(prefix="backfill-dialog-") as folder:
        home = Path(folder)
        port, password = free_port(), secrets.token_urlsafe(12)
        env = api_server_env(home, port, password)
        with (home / "airflow.log").open("w") as log:
            process = start_api_server(env, port, log)
            try:
                driver = open_browser(home / "downloads")
                try:
                    driver.set_window_size(1400, 900)
                    text = fill_backfill_dialog(driver, f"http://127.0.0.1:{port}", password, args.first, args.last)
                    driver.save_screenshot(str(args.out))
                finally:
                    driver.quit()
            finally:
                stop(process)
    print(f"{args.out}: {' / '.join(line for line in text.splitlines() if line.strip())[:400]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
