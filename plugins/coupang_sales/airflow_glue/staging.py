"""The staging area between a run's tasks, through Airflow's ``ObjectStoragePath``.

The root is a URL: ``COUPANG_STAGING_URL`` (``s3://bucket/coupang-staging``,
``gs://...``: any scheme an installed provider registers, with the Airflow connection
``COUPANG_STAGING_CONN_ID``), else the local folder ``COUPANG_STAGING_DIR`` (default
``$AIRFLOW_HOME/staging``) as ``file://``. Each run and account has its folder
``<root>/<dag_id>/<run_id>/<account>/``.

Parsers and the browser need local files, so each task works in a local *working copy* of the
account's folder: on a local root the folder itself (nothing copied), on an object store a
private temporary folder filled from the store and uploaded back (new and changed files,
also when the task fails, so a failure's screenshots and quality results are kept). The
browser's download folder is always local and never uploaded: the extract moves what it
keeps into ``raw/``.

Folders older than ``COUPANG_STAGING_RETENTION_DAYS`` (default 14) are deleted by the
``cleanup_staging`` task of each DAG (``remove_expired``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coupang_sales.config import settings

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

LOCAL_PROTOCOLS = ("file", "local", "")
NEVER_UPLOADED = ("downloads",)  # the browser's own folder: partial files, nothing a later task reads


def staging_root() -> "ObjectStoragePath":
    from airflow.sdk import ObjectStoragePath

    config = settings()
    url = config.staging_url
    if not url:
        folder = Path(config.staging_dir
                      or Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "staging")
        url = folder.expanduser().resolve().as_uri()
    return ObjectStoragePath(url, conn_id=config.staging_conn_id)


def staging_path(url: str) -> "ObjectStoragePath":
    """A staging folder from the URL a task passed on in its XCom summary."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url, conn_id=settings().staging_conn_id)


def is_local(path: "ObjectStoragePath") -> bool:
    return path.protocol in LOCAL_PROTOCOLS


def local_path(path: "ObjectStoragePath") -> Path:
    return Path(path.path)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def account_folder(context: Mapping[str, Any], account_id: str) -> "ObjectStoragePath":
    """``<root>/<dag_id>/<run_id>/<account>/``, created; a local one readable by its owner only."""
    run_id = _safe(str(context.get("run_id") or "manual"))
    dag_id = context["dag"].dag_id if context.get("dag") else "adhoc"
    folder = staging_root() / dag_id / run_id / _safe(account_id)
    if is_local(folder):
        local = local_path(folder)
        local.mkdir(parents=True, exist_ok=True)
        local.chmod(0o700)  # sellers' sales files: readable by the workers' user only, whatever the umask
    return folder


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def _wanted(relative: str, only: Sequence[str] | None) -> bool:
    if relative.split("/", 1)[0] in NEVER_UPLOADED:
        return False
    return only is None or any(fnmatch.fnmatch(Path(relative).name, pattern) for pattern in only)


@contextlib.contextmanager
def working_copy(folder: "ObjectStoragePath", *, only: Sequence[str] | None = None, fresh: Sequence[str] = (),
                 ) -> Iterator[Path]:
    """A local folder holding ``folder``'s files (those whose name matches ``only``, default all).

    ``fresh`` names sub-folders emptied in the store first (an extract's ``raw``: a retry never
    mixes two attempts' files). On an object store, what the block writes or changes is
    uploaded on the way out, whatever happened in it.
    """
    if is_local(folder):
        local = local_path(folder)
        for name in fresh:
            shutil.rmtree(local / name, ignore_errors=True)
        local.mkdir(parents=True, exist_ok=True)
        yield local
        return
    for name in fresh:
        if (folder / name).exists():
            (folder / name).fs.rm((folder / name).path, recursive=True)
    work = Path(tempfile.mkdtemp(prefix="coupang-staging-"))
    work.chmod(0o700)
    try:
        if folder.exists():
            for remote in folder.rglob("*"):
                relative = str(remote.relative_to(folder))
                if remote.is_file() and _wanted(relative, only):
                    target = work / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(remote.read_bytes())
        before = _files(work)
        try:
            yield work
        finally:
            for relative, state in _files(work).items():
                if before.get(relative) != state and _wanted(relative, None):
                    target = folder / relative
                    with (work / relative).open("rb") as source, target.open("wb") as sink:
                        shutil.copyfileobj(source, sink)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def retention_days() -> float:
    return settings().staging_retention_days


def _modified(path: "ObjectStoragePath") -> dt.datetime | None:
    """When a file was last written, from whatever its store reports (local mtime, S3 LastModified, ...)."""
    info = path.stat()
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(key) if isinstance(info, Mapping) else getattr(info, key, None)
        if value is None:
            continue
        if isinstance(value, (int, float)):
            return dt.datetime.fromtimestamp(value, dt.UTC)
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None


def _newest(folder: "ObjectStoragePath") -> dt.datetime | None:
    times = [_modified(p) for p in folder.rglob("*") if p.is_file()]
    times = [t for t in times if t is not None]
    if not times and is_local(folder):
        times = [dt.datetime.fromtimestamp(local_path(folder).stat().st_mtime, dt.UTC)]
    return max(times) if times else None


def remove_expired(dag_id: str, *, days: float | None = None, now: dt.datetime | None = None,
                   keep: Sequence[str] = ()) -> list[str]:
    """Delete the run folders of ``dag_id`` whose newest file is older than ``days`` (default the
    retention setting); returns what was deleted. ``keep`` names run folders never deleted (the
    current run's). A folder whose age cannot be told is kept."""
    days = retention_days() if days is None else days
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    base = staging_root() / dag_id
    if not base.exists():
        return []
    removed = []
    for run in sorted(base.iterdir(), key=str):
        if not run.is_dir() or run.name in {_safe(k) for k in keep}:
            continue
        newest = _newest(run)
        if newest is None or newest >= cutoff:
            continue
        if is_local(run):
            shutil.rmtree(local_path(run))
        else:
            run.fs.rm(run.path, recursive=True)
        removed.append(run.name)
        log.info("staging: removed %s (newest file %s, older than %s days)", run, newest.isoformat(), days)
    return removed
