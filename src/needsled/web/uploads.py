"""Uploaded models: a workbook (with its scenarios file if any), the files of a model folder,
or a zipped folder; packed into one zip archive, unpacked safely, validated by
:func:`needsled.io.load.load_model` with every problem located by file, sheet and cell.

Nothing is stored unless the whole model validates (nothing is half-loaded), and the user's
files are never changed: the archive holds them as they came.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from needsled.errors import InputError, Problem
from needsled.model import Model
from needsled.privacy import suppress_table
from needsled.web.errors import ValidationFailed

__all__ = [
    "Packed",
    "model_directory",
    "model_served",
    "model_summary",
    "pack",
    "problem_rows",
    "unpack",
    "validate_archive",
    "workbook_size",
]

KEEP = (".csv", ".xlsx", ".xlsm", ".xls", ".ods", ".yaml", ".yml")
WORKBOOKS = (".xlsx", ".xlsm", ".ods")  # themselves zip archives: checked the same way
MAX_FILES = 200
MAX_UNPACKED = 200 * 1024 * 1024
SAFE_NAME = re.compile(r"[^A-Za-z0-9._ \-]")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Packed:
    archive: bytes
    filename: str
    sha256: str


def _refuse(message: str, fix: str, file: str = "upload") -> ValidationFailed:
    return ValidationFailed(
        "The upload cannot be used.", [{"file": file, "message": message, "fix": fix}]
    )


def _base_name(name: str) -> str:
    """The file's own name, without any folder the browser sent (``folder/areas.csv``) and
    without control characters (no file system takes a NUL)."""
    cleaned = CONTROL.sub("", name.replace("\\", "/"))
    return PurePosixPath(cleaned).name[:200]


def pack(files: Sequence[tuple[str, bytes]]) -> Packed:
    """One zip archive from what was uploaded: a single .zip (kept, after a safety check), or
    a workbook and/or CSV files with a scenarios file."""
    files = [(n, b) for n, b in files if n]
    if not files:
        raise _refuse("no file was chosen", "choose a workbook, a zipped model folder, or files")
    if len(files) == 1 and files[0][0].lower().endswith(".zip"):
        name, data = files[0]
        _members(data)  # refuses anything unsafe now, before it is stored
        return Packed(data, _base_name(name), hashlib.sha256(data).hexdigest())
    seen: dict[str, bytes] = {}
    for name, data in files:
        base = _base_name(name)
        if not base.lower().endswith(KEEP):
            raise _refuse(
                f"{base} is not a model file",
                "upload .xlsx workbooks, .csv tables and scenarios.yaml (or one .zip)",
                base,
            )
        if base.lower() in seen:
            raise _refuse(f"two files are called {base}", "upload each table once", base)
        seen[base.lower()] = data
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            zf.writestr(_base_name(name), data)
    data = buf.getvalue()
    first = _base_name(files[0][0]) if len(files) == 1 else f"{len(files)} files"
    return Packed(data, first, hashlib.sha256(data).hexdigest())


def _members(archive: bytes) -> list[tuple[zipfile.ZipInfo, str]]:
    """The archive's model files and the names to unpack them as (folder flattened).

    Refuses links, absolute paths and ``..``; ignores other files (``__MACOSX``, hidden
    files, anything that is not a table or a scenarios file)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile:
        raise _refuse("the .zip file cannot be opened", "zip the model folder again") from None
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > MAX_FILES * 5:
        raise _refuse(f"the .zip holds {len(infos)} files", "zip only the model folder")
    chosen: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    for info in infos:
        if CONTROL.search(info.filename):
            raise _refuse("a file in the .zip has a control character in its name", "rename it")
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts:
            raise _refuse(f"{info.filename} points outside the folder", "zip the folder itself")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _refuse(f"{info.filename} is a link", "zip the files, not links to them")
        if any(p.startswith((".", "__MACOSX", "~$")) for p in path.parts):
            continue
        if path.suffix.lower() in KEEP:
            chosen.append((info, path))
    tops = {p.parts[0] for _, p in chosen if len(p.parts) > 1}
    strip = len(tops) == 1 and all(len(p.parts) > 1 for _, p in chosen)
    out: list[tuple[zipfile.ZipInfo, str]] = []
    for info, path in chosen:
        rel = PurePosixPath(*path.parts[1:]) if strip else path
        if len(rel.parts) == 1:  # a model is one folder: files deeper down are not part of it
            out.append((info, rel.name))
    if not out:
        raise _refuse(
            "the .zip holds no model files",
            "zip the folder holding areas.csv, crime.csv, ... (or the workbook) and scenarios.yaml",
        )
    names = [n.lower() for _, n in out]
    if len(set(names)) != len(names):
        raise _refuse("the .zip holds two files of the same name", "keep one of each")
    if len(out) > MAX_FILES:
        raise _refuse(f"the .zip holds {len(out)} model files", "zip only the model folder")
    return out


def _too_big() -> ValidationFailed:
    return _refuse(
        f"the model unpacks to more than {MAX_UNPACKED >> 20} MB",
        "upload only the model's tables",
    )


def workbook_size(path: Path, name: str, room: int) -> int:
    """What a workbook (a zip of XML) unpacks to, read through (a declared size can lie), up to
    ``room`` bytes: a small workbook that unpacks to gigabytes is refused before the loader
    opens it. A file that is not a zip is left for the loader to say what is wrong with it."""
    try:
        book = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        return 0
    total = 0
    with book:
        if len(book.infolist()) > MAX_FILES * 50:
            raise _refuse(f"{name} holds too many parts to be a workbook", "save it again", name)
        try:
            for info in book.infolist():
                with book.open(info) as part:
                    while block := part.read(1 << 20):
                        total += len(block)
                        if total > room:
                            raise _too_big()
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
            raise _refuse(
                f"{name} is damaged and cannot be read", "save the workbook again", name
            ) from None
    return total


def unpack(archive: bytes, folder: Path) -> Path:
    """Unpack into a new folder (made through a temporary name, so never half-written). At
    most ``MAX_UNPACKED`` bytes, counting what the workbooks inside unpack to."""
    members = _members(archive)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        total = 0
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            for info, name in members:
                try:
                    with zf.open(info) as src, (tmp / name).open("wb") as dst:
                        while block := src.read(1 << 20):
                            total += len(block)
                            if total > MAX_UNPACKED:
                                raise _too_big()
                            dst.write(block)
                except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
                    raise _refuse(
                        f"{name} in the .zip is damaged and cannot be read",
                        "zip the model folder again",
                        name,
                    ) from None
                if name.lower().endswith(WORKBOOKS):
                    total += workbook_size(tmp / name, name, MAX_UNPACKED - total)
        try:
            os.replace(tmp, folder)
        except OSError:  # another request unpacked it first: the same bytes, keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def problem_rows(exc: InputError, root: Path) -> list[dict[str, Any]]:
    """Each problem as a row, with the file named as the user knows it (not our folder)."""
    prefix = str(root.resolve()) + os.sep

    def rel(text: str) -> str:
        return text.replace(prefix, "").replace(str(root.resolve()), "the upload")

    return [_row(p, rel) for p in exc.problems]


def _row(p: Problem, rel: Any) -> dict[str, Any]:
    return {
        "file": rel(p.file),
        "sheet": p.sheet or "",
        "cell": p.cell or "",
        "row": p.row,
        "column": p.column or "",
        "value": p.value,
        "message": rel(p.message),
        "fix": rel(p.fix),
    }


def validate_archive(archive: bytes, work: Path) -> Model:
    """Unpack into a scratch folder under ``work`` and load the model, or ValidationFailed
    listing every problem; the scratch folder is removed either way."""
    from needsled.io.load import load_model

    work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="upload-", dir=work))
    try:
        folder = unpack(archive, scratch / "model")
        try:
            return load_model(folder)
        except InputError as exc:
            n = len(exc.problems)
            raise ValidationFailed(
                f"{n} problem{'s' if n != 1 else ''} in the model; nothing was stored.",
                problem_rows(exc, folder),
            ) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def model_summary(model: Model) -> dict[str, Any]:
    """What the model pages show without loading the model again. The providers' starting
    waiting lists are observed counts about service users: suppressed here, once, so that
    no page or download can show a small number (model.md section 8)."""
    st, sv = model.staffing, model.services
    counts = pd.DataFrame(
        np.rint(np.where(st.served, st.waiting_start, 0)).astype(np.int64),
        index=list(model.area_names),
        columns=list(sv.codes),
    )
    observed = suppress_table(counts, total_label="Total")
    served = model_served(model)
    return {
        "areas": len(model.area_codes),
        "offences": [[c, n] for c, n in zip(model.offence_codes, model.offence_names, strict=True)],
        "services": [[c, n] for c, n in zip(sv.codes, sv.names, strict=True)],
        "scenarios": [[s.name, s.description or ""] for s in model.scenarios],
        "history_end": model.history_end,
        "first_month": model.months[0],
        "last_month": model.months[-1],
        "served": served,
        "directory": model_directory(model),
        "observed_waiting": {
            "columns": [str(c) for c in observed.columns],
            "rows": [
                [str(i), *map(str, r)]
                for i, r in zip(observed.index, observed.to_numpy(), strict=True)
            ],
        },
    }


def model_directory(model: Model) -> dict[str, Any]:
    """The model's providers (its directory table): code -> name and the (service, area)
    pairs it delivers; empty when the model has no directory table or it cannot be used."""
    from needsled.returns.providers import providers

    try:
        found = providers(model)
    except InputError:
        return {}
    return {
        code: {"name": p.name, "pairs": [list(pair) for pair in p.pairs()]}
        for code, p in found.items()
    }


def safe_name(text: str, fallback: str = "model") -> str:
    cleaned = " ".join(SAFE_NAME.sub("", text).split())[:120]
    return cleaned or fallback


def model_served(model: Model) -> list[list[str]]:
    """The model's ``[service, area]`` pairs where the service is served (as the summary and
    provider scoping keep them)."""
    return [
        [s, a]
        for j, s in enumerate(model.services.codes)
        for i, a in enumerate(model.area_codes)
        if model.staffing.served[i, j]
    ]
