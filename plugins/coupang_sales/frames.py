"""Staged frames between the stages: Parquet files, never pickles.

A pickle on a shared volume runs whatever code was written into it when read; a Parquet file
is data only. Types survive the round trip: integer won stays integer (``int64``, or the
nullable ``Int64`` when a column has gaps: an integer column of Python ints with ``None`` is
written as ``Int64``, never left for Arrow to turn into floats), dates stay ``datetime.date``,
booleans stay booleans, text stays text.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd

SUFFIX = ".parquet"


def chunk_file(name: str, chunk: int | str) -> str:
    """The staged file of ``name`` for a load's derivation chunk ``chunk``: ``name`` itself for the
    first, ``order_lines.2.parquet`` for the third (a load derives 100,000 groups at a time); ``"*"``
    gives the pattern of every chunk's file after the first."""
    if chunk == 0:
        return name
    stem, dot, suffix = name.partition(".")
    return f"{stem}.{chunk}{dot}{suffix}"


def clear_chunks(staging: Path, *names: str) -> None:
    """Remove the chunk files of ``names`` after the first that an earlier try of a load left (the
    first chunk's file is written again by the next load)."""
    for name in names:
        for stale in staging.glob(chunk_file(name, "*")):
            stale.unlink()


def _integers_kept(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Object columns holding only integers (and gaps) become ``Int64``; nothing else changes."""
    from pandas.api.types import infer_dtype

    converted = {}
    for column in frame.columns:
        series = frame[column]
        if series.dtype == object and infer_dtype(series, skipna=True) == "integer":
            converted[column] = series.astype("Int64")
    return frame.assign(**converted) if converted else frame


def write_frame(frame: "pd.DataFrame", path: Path) -> Path:
    """Write ``frame`` to ``path`` (``.parquet``) atomically: a reader never sees half a file."""
    path = Path(path)
    partial = path.with_name(path.name + ".part")
    # Uncompressed: staged files live 14 days, and a sweep for leaked secrets can read their text.
    _integers_kept(frame).to_parquet(partial, engine="pyarrow", compression=None)
    partial.replace(path)
    return path


def read_frame(path: Path, columns: "Sequence[str] | None" = None) -> "pd.DataFrame":
    """The frame of ``path``; with ``columns``, only those of them the file has (in the file's order)."""
    import pandas as pd

    if columns is not None:
        import pyarrow.parquet as pq

        wanted = set(columns)
        columns = [name for name in pq.read_schema(Path(path)).names if name in wanted]
    return pd.read_parquet(Path(path), engine="pyarrow", columns=columns)
