"""Staging between tasks: Parquet frames (no pickles), working copies of an object store, retention."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from coupang_sales.airflow_glue import staging
from coupang_sales.frames import read_frame, write_frame
from coupang_sales.model import Window
from coupang_sales.plan import RunPlan

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400


def test_no_pickle_is_written_or_read_by_the_package():
    sources = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "plugins" / "coupang_sales").rglob("*.py"))
    for code in ("import pickle", "to_pickle", "read_pickle", "pickle.load", ".pkl", "import dill", "joblib"):
        assert code not in sources, code


def test_money_stays_integer_won_through_parquet(tmp_path):
    frame = pd.DataFrame({
        "payment_amount": pd.array([19_800, -9_900], dtype="Int64"),
        "collected_commission": pd.array([2_376, None], dtype="Int64"),
        "quantity": [2, -1],
        "unit_price": pd.Series([9_900, None], dtype=object),  # Python ints with a gap: never floats
        "sales_date": [dt.date(2026, 1, 5), dt.date(2026, 1, 6)],
        "option_id": ["S1", None],
        "is_cancelled": [False, True],
    })
    back = read_frame(write_frame(frame, tmp_path / "lines.parquet"))
    assert str(back["payment_amount"].dtype) == "Int64" and str(back["collected_commission"].dtype) == "Int64"
    assert back["quantity"].dtype == "int64" and str(back["unit_price"].dtype) == "Int64"
    assert back["unit_price"].tolist()[0] == 9_900 and back["unit_price"].isna().tolist() == [False, True]
    assert back["sales_date"].tolist() == [dt.date(2026, 1, 5), dt.date(2026, 1, 6)]
    assert back["is_cancelled"].tolist() == [False, True] and back["option_id"].tolist()[0] == "S1"
    assert not (tmp_path / "lines.parquet.part").exists()
    with (tmp_path / "lines.parquet").open("rb") as written:
        data = written.read()
    assert data[:4] == b"PAR1", "a Parquet file, data only"
    assert b"S1" in data, "uncompressed: a sweep for leaked secrets reads the text of staged files"


def test_jet_transform_reads_the_typed_frame_validate_wrote_not_the_export_again(tmp_path):
    from coupang_sales.jet import policy as jet
    from coupang_sales.jet import stages
    from coupang_sales.jet import v1 as jet_v1

    item = {"vendorItemDetails": {"vendorItemId": 87001, "productName": "보리차", "itemName": "1L"},
            "businessInsightsMetricsResponse": {"totalUnitsSold": 3, "totalGmv": 29_700}}
    staged = {"amount_field": "totalGmv", "days": [{"date": "2026-01-05", "items": [item]}]}
    (tmp_path / stages.V1_FILE).write_text(json.dumps(staged), encoding="utf-8")
    account = {"channel": "coupang_jet", "account_id": "A1", "conn_id": "c", "jet_version": 1}
    day = dt.date(2026, 1, 5)
    plan = RunPlan(account=account, window=Window(day, day), list_until=day, staging=tmp_path.as_uri(),
                   started_at=dt.datetime.now(dt.UTC))
    version_1 = stages.stages_for(account)
    version_1.validate(plan, tmp_path)
    (tmp_path / stages.V1_FILE).unlink()  # transform must not parse the staged answer a second time
    assert version_1.transform(plan, tmp_path).order_lines == 1
    loaded = read_frame(tmp_path / stages.ORDER_LINES_FRAME)
    direct = jet.transform_v1(jet_v1.sales_rows(staged), account_id="A1")
    assert loaded[["order_id", "sales_date", "quantity", "payment_amount"]].to_dict("records") == \
        direct[["order_id", "sales_date", "quantity", "payment_amount"]].to_dict("records")
    assert str(loaded["payment_amount"].dtype) in ("Int64", "int64")


# --- the staging root and working copies -------------------------------------------------------

def test_the_root_is_a_file_url_of_the_staging_dir_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("COUPANG_STAGING_URL", raising=False)
    monkeypatch.setenv("COUPANG_STAGING_DIR", str(tmp_path / "stage"))
    root = staging.staging_root()
    assert str(root) == (tmp_path / "stage").as_uri() and staging.is_local(root)


@pytest.fixture
def memory_store(monkeypatch):
    """An object store that is not a local folder (fsspec's in-memory filesystem), as the staging root."""
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach("memory", fs=MemoryFileSystem())
    url = f"memory://staging-{uuid.uuid4().hex}"
    monkeypatch.setenv("COUPANG_STAGING_URL", url)
    return url


def test_a_working_copy_of_an_object_store_downloads_what_is_asked_and_uploads_what_changed(memory_store):
    folder = staging.staging_root() / "dag" / "run" / "V1"
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    (folder / "raw" / "lines.parquet").write_bytes(b"frame")
    (folder / "raw" / "receive_detail_1.xlsx").write_bytes(b"export")
    with staging.working_copy(folder / "raw", only=("*.parquet", "*.json")) as work:
        assert staging.is_local(staging.staging_root()) is False
        assert sorted(p.name for p in work.iterdir()) == ["lines.parquet"], "only the frames, not the exports"
        (work / "facts.parquet").write_bytes(b"facts")
    assert (folder / "raw" / "facts.parquet").read_bytes() == b"facts"
    assert not work.exists(), "the local copy is removed"

    with pytest.raises(RuntimeError), staging.working_copy(folder, only=(), fresh=("raw",)) as work:
        (work / "raw").mkdir()
        (work / "raw" / "invoices.json").write_text("[]")
        (work / "downloads").mkdir()
        (work / "downloads" / "x.crdownload").write_bytes(b"partial")
        (work / "artifacts").mkdir()
        (work / "artifacts" / "failure.png").write_bytes(b"png")
        raise RuntimeError("the portal failed")
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert names == ["artifacts/failure.png", "raw/invoices.json"], \
        "an extract's retry starts from an empty raw/; a failure keeps its screenshot; downloads stay local"


def test_a_local_root_is_worked_in_place(tmp_path, monkeypatch):
    monkeypatch.delenv("COUPANG_STAGING_URL", raising=False)
    monkeypatch.setenv("COUPANG_STAGING_DIR", str(tmp_path))
    folder = staging.account_folder({"run_id": "r1"}, "V1")
    (tmp_path / "adhoc" / "r1" / "V1" / "raw").mkdir()
    (tmp_path / "adhoc" / "r1" / "V1" / "raw" / "old.xlsx").write_bytes(b"x")
    with staging.working_copy(folder, only=(), fresh=("raw",)) as work:
        assert work == tmp_path / "adhoc" / "r1" / "V1" and not (work / "raw").exists()


# --- retention -----------------------------------------------------------------------------------

def age(path: Path, days: float) -> None:
    moment = time.time() - days * DAY
    for item in [path, *path.rglob("*")]:
        os.utime(item, (moment, moment))


def run_folder(root: Path, dag_id: str, run_id: str, days: float, files=("V1/raw/lines.parquet",)) -> Path:
    folder = root / dag_id / run_id
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    age(folder, days)
    return folder


def test_cleanup_deletes_run_folders_older_than_the_retention(tmp_path, monkeypatch):
    monkeypatch.delenv("COUPANG_STAGING_URL", raising=False)
    monkeypatch.delenv("COUPANG_STAGING_RETENTION_DAYS", raising=False)
    monkeypatch.setenv("COUPANG_STAGING_DIR", str(tmp_path))
    old = run_folder(tmp_path, "coupang_rocket_sales", "scheduled__2026-01-01", 20)
    recent = run_folder(tmp_path, "coupang_rocket_sales", "scheduled__2026-01-19", 3)
    # an old run one of whose files was written yesterday (a late retry) is still in use
    touched = run_folder(tmp_path, "coupang_rocket_sales", "manual__2026-01-02", 30,
                         files=("V1/raw/a.parquet", "V2/raw/b.parquet"))
    age(touched / "V2", 1)
    current = run_folder(tmp_path, "coupang_rocket_sales", "manual__now", 40)
    other_dag = run_folder(tmp_path, "coupang_jet_sales", "scheduled__2026-01-01", 20)

    removed = staging.remove_expired("coupang_rocket_sales", keep=["manual__now"])
    assert removed == ["scheduled__2026-01-01"]
    assert not old.exists() and recent.exists() and touched.exists() and current.exists() and other_dag.exists()

    monkeypatch.setenv("COUPANG_STAGING_RETENTION_DAYS", "2")
    assert staging.remove_expired("coupang_rocket_sales") == ["manual__now", "scheduled__2026-01-19"]
    assert touched.exists(), "its newest file is a day old"
    assert staging.remove_expired("coupang_jet_sales", days=30) == [] and other_dag.exists()


def test_cleanup_works_on_an_object_store(memory_store):
    root = staging.staging_root()
    (root / "coupang_jet_sales" / "run1" / "A1").mkdir(parents=True, exist_ok=True)
    (root / "coupang_jet_sales" / "run1" / "A1" / "facts.parquet").write_bytes(b"x")
    assert staging.remove_expired("coupang_jet_sales") == [], "written just now"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=15)
    assert staging.remove_expired("coupang_jet_sales", now=later) == ["run1"]
    assert not (root / "coupang_jet_sales" / "run1").exists()
