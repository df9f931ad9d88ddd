"""The returns store: a folder holding every imported return and a log of the imports.

- ``returns.parquet``: the tidy :data:`~needsled.returns.format.COLUMNS` table of every return.
- ``imports.csv``: one row per imported file: its name, SHA-256, providers, quarters, the
  returns it held and how many of them replaced earlier ones, and when.

A return is one provider's counts for one service, area and quarter; importing the same four
again replaces the earlier return whole. Each file is written to a temporary file in the same
folder and then renamed over the old one, so a reader never sees half a file.

The two files are kept consistent without a lock spanning both: ``returns.parquet`` also holds
the whole log, in its metadata (``needsled.imports``), and is written first; ``imports.csv`` is
written last, as a readable copy. A crash between the two renames leaves the table with the
new returns and ``imports.csv`` one import behind; :func:`read_log` then gives the log from the
table (the one that matches the returns) and :func:`add_to_store` writes ``imports.csv`` again
at the next import, so nothing is lost. A store written before the table held its log (no
metadata) is read from ``imports.csv`` as it is.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from needsled.returns.format import COLUMNS
from needsled.returns.read import ImportedFile

__all__ = [
    "LOG_FILE",
    "STORE_FILE",
    "StoreUpdate",
    "add_to_store",
    "empty_returns",
    "merge_returns",
    "read_log",
    "read_store",
]

STORE_FILE = "returns.parquet"
LOG_FILE = "imports.csv"
LOG_COLUMNS = ("file", "sha256", "providers", "quarters", "returns", "replaced", "imported_at")
#: the key of the table's metadata that holds the log (as CSV text)
LOG_METADATA = b"needsled.imports"
KEY = ["provider", "service", "area", "quarter"]
ReturnKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class StoreUpdate:
    added: tuple[ReturnKey, ...]  # returns new to the store
    replaced: tuple[ReturnKey, ...]  # returns that replaced an earlier import
    total: int  # returns in the store now


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.loc[:, list(COLUMNS)].copy()
    for c in COLUMNS[:-1]:
        out[c] = out[c].astype(object).where(out[c].notna(), "").map(str).astype(object)
    out["value"] = out["value"].astype("float64")
    return out


def empty_returns() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in COLUMNS}))


def read_store(folder: str | Path) -> pd.DataFrame:
    """Every stored return as the tidy table (empty if the store does not exist yet)."""
    path = Path(folder) / STORE_FILE
    if not path.is_file():
        return empty_returns()
    return _typed(pd.read_parquet(path))


def read_log(folder: str | Path) -> pd.DataFrame:
    """The log of imports: the one ``returns.parquet`` holds, where it has one (it is written
    with the returns, so it always matches them; ``imports.csv`` may be an import behind after
    a crash), else ``imports.csv``."""
    folder = Path(folder)
    held = _held_log(folder / STORE_FILE)
    if held is not None:
        return held
    path = folder / LOG_FILE
    if not path.is_file():
        return _empty_log()
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _empty_log() -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in LOG_COLUMNS}, dtype=object)


def _held_log(path: Path) -> pd.DataFrame | None:
    """The log in the table's metadata, or None (no table, or one written without it)."""
    if not path.is_file():
        return None
    meta = pq.read_schema(path).metadata or {}
    if LOG_METADATA not in meta:
        return None
    text = meta[LOG_METADATA].decode("utf-8")
    if not text.strip():
        return _empty_log()
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def _keys(frame: pd.DataFrame) -> set[ReturnKey]:
    return {(p, s, a, q) for p, s, a, q in frame[KEY].drop_duplicates().itertuples(index=False)}


def merge_returns(
    stored: pd.DataFrame, new: pd.DataFrame
) -> tuple[pd.DataFrame, tuple[ReturnKey, ...], tuple[ReturnKey, ...]]:
    """The store with ``new`` added: a return already stored (same provider, service, area and
    quarter) is replaced whole. Also the keys added and the keys replaced."""
    new_keys, old_keys = _keys(new), _keys(stored)
    replaced = tuple(sorted(new_keys & old_keys))
    added = tuple(sorted(new_keys - old_keys))
    parts = [_typed(new)]
    if len(stored):
        keep = ~pd.MultiIndex.from_frame(stored[KEY]).isin(list(new_keys))
        parts.insert(0, stored[keep])
    merged = pd.concat(parts, ignore_index=True)
    merged = merged.sort_values([*KEY, "measure", "category"], kind="stable", ignore_index=True)
    return _typed(merged), added, replaced


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a temporary file in the same folder, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def add_to_store(
    folder: str | Path,
    frame: pd.DataFrame,
    files: Sequence[ImportedFile] = (),
    *,
    now: dt.datetime | None = None,
) -> StoreUpdate:
    """Add checked returns (from :func:`~needsled.returns.read.read_returns`) to the store in
    ``folder`` (created if needed), replacing any earlier import of the same returns, and log
    each file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    merged, added, replaced = merge_returns(read_store(folder), frame)
    stamp = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    log = read_log(folder)
    rows = [
        {
            "file": Path(f.file).name,
            "sha256": f.sha256,
            "providers": " ".join(f.providers),
            "quarters": " ".join(f.quarters),
            "returns": str(len(f.keys)),
            "replaced": str(sum(1 for k in f.keys if k in set(replaced))),
            "imported_at": stamp,
        }
        for f in files
    ]
    new_rows = pd.DataFrame(rows, columns=list(LOG_COLUMNS), dtype=object)
    log = pd.concat([log, new_rows], ignore_index=True) if len(log) else new_rows
    text = log.to_csv(index=False)
    # the returns with their log first, then the log's readable copy (see the module docstring)
    _write_atomic(folder / STORE_FILE, lambda p: _write_table(merged, text, p))
    _write_atomic(folder / LOG_FILE, lambda p: p.write_text(text, encoding="utf-8"))
    return StoreUpdate(added, replaced, len(_keys(merged)))


def _write_table(frame: pd.DataFrame, log: str, path: Path) -> None:
    """``returns.parquet``: the returns, with the log in the metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {}) | {LOG_METADATA: log.encode("utf-8")}
    pq.write_table(table.replace_schema_metadata(meta), path)
