"""Quarterly provider returns in the web application (for the pages and the JSON API, like
:mod:`needsled.web.actions`): the Excel return of a provider and quarter, uploading filled-in
returns, the stored returns and their suppressed outcome tables.

The work is :mod:`needsled.returns`' (the same template, checks and tables as ``needsled
returns template``, ``import`` and ``outcomes``); here are who may, the store and the audit log.

- Returns are kept in the database (``provider_returns``), one row per provider, service, area
  and quarter of a model; importing one again replaces its counts.
- Nothing is stored unless every file uploaded together is clean; the problems are listed by
  file, sheet and cell, as model uploads list theirs.
- Counts are shown only in :func:`needsled.returns.outcomes.outcome_tables`' suppressed tables
  (1 to 4 as "<5", secondary suppression as "[c]"): no page, download or API answer gives a
  return's raw counts.
- A provider (with a provider code) works only with their own code's returns; admins and
  commissioners with every provider's of the organisation's models; viewers with none.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from needsled.errors import InputError
from needsled.returns.format import COLUMNS
from needsled.web import access
from needsled.web.actions import audit_refusal, loaded_model
from needsled.web.auth import Principal
from needsled.web.db import ProviderReturn, StoredModel, utcnow
from needsled.web.errors import NotFound, ValidationFailed
from needsled.web.state import AppState
from needsled.web.uploads import (
    MAX_UNPACKED,
    WORKBOOKS,
    model_directory,
    model_served,
    problem_rows,
    safe_name,
    workbook_size,
)

__all__ = [
    "OUTCOME_TABLES",
    "ReturnsView",
    "outcome_csv",
    "outcomes",
    "page_tables",
    "return_for",
    "returns_models",
    "returns_view",
    "tables_of",
    "template",
    "upload_returns",
]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_RETURN_FILES = 50  # returns in one upload

#: the suppressed tables, in the order pages show them
OUTCOME_TABLES = (
    "outcomes_by_need",
    "outcomes_by_group",
    "journeys",
    "time_to_support",
    "satisfaction",
)
TITLES = {
    "outcomes_by_need": "Outcomes by need: better able to cope and recover, at closure",
    "outcomes_by_group": "Outcomes by group (all areas together)",
    "journeys": "Journeys: re-referrals, closures and hand-overs",
    "time_to_support": "Time to support: people who started, by weeks waited",
    "satisfaction": "Satisfaction",
}
RETURN_FILES = (*WORKBOOKS, ".xls", ".csv", ".txt", ".tsv")  # text files: refused in words
SAFE_FILE = re.compile(r"[^A-Za-z0-9._\-]")


@dataclass(frozen=True)
class ReturnsView:
    """A model's returns as the user may see them."""

    model: StoredModel
    scope: str | None  # None: every provider's returns; else this provider code's only
    directory: dict[str, Any]  # code -> {"name", "pairs"}
    returns: list[ProviderReturn]


# the model and its directory ----------------------------------------------------------------


def _directory(app: AppState, stored: StoredModel) -> dict[str, Any]:
    """The model's directory (from its summary; a model uploaded before summaries held it is
    loaded once and its summary completed)."""
    if "directory" in stored.summary and "served" in stored.summary:
        found: dict[str, Any] = stored.summary["directory"]
        return found
    model = loaded_model(app, stored)
    directory = model_directory(model)
    served = model_served(model)
    with app.store.session() as db:
        row = db.get(StoredModel, stored.id)
        if row is not None:
            row.summary = {**row.summary, "directory": directory, "served": served}
    stored.summary = {**stored.summary, "directory": directory, "served": served}
    return directory


def _model(app: AppState, who: Principal, model_id: int) -> tuple[StoredModel, str | None]:
    with app.store.session() as db:
        stored = access.get_returns_model(db, who, model_id)
        db.expunge(stored)
    _directory(app, stored)
    return stored, access.returns_scope(who, stored.summary)


def _visible(app: AppState, model_id: int, scope: str | None) -> list[ProviderReturn]:
    with app.store.session() as db:
        q = select(ProviderReturn).where(ProviderReturn.model_id == model_id)
        if scope is not None:
            q = q.where(ProviderReturn.provider == scope)
        q = q.order_by(
            ProviderReturn.quarter.desc(),
            ProviderReturn.provider,
            ProviderReturn.service,
            ProviderReturn.area,
        )
        rows = list(db.scalars(q))
        for r in rows:
            db.expunge(r)
        return rows


def returns_models(app: AppState, who: Principal) -> list[StoredModel]:
    with app.store.session() as db:
        rows = access.visible_returns_models(db, who)
        for r in rows:
            db.expunge(r)
        return rows


def returns_view(app: AppState, who: Principal, model_id: int) -> ReturnsView:
    stored, scope = _model(app, who, model_id)
    directory = stored.summary.get("directory") or {}
    if scope is not None:
        directory = {scope: directory[scope]}
    return ReturnsView(stored, scope, directory, _visible(app, model_id, scope))


def return_for(app: AppState, who: Principal, return_id: int) -> ProviderReturn:
    with app.store.session() as db:
        row = access.get_return(db, who, return_id)
        db.expunge(row)
        return row


# the Excel return ---------------------------------------------------------------------------


def template(
    app: AppState, who: Principal, model_id: int, quarter: str, provider: str | None, ip: str
) -> tuple[bytes, str]:
    """The Excel return of a provider and quarter (``returns/template.py``'s workbook) and a
    file name for it. A provider gets their own code's; another code is 404 for them.
    Admins and commissioners name the provider."""
    from needsled.returns.template import write_return_template

    stored, scope = _model(app, who, model_id)
    code = (provider or "").strip() or scope or ""
    if scope is not None and code != scope:
        raise NotFound()
    if not code:
        raise ValidationFailed(
            "Choose the provider whose return to make.",
            [
                {
                    "file": "form",
                    "column": "provider",
                    "message": "no provider was given",
                    "fix": "choose one of: " + ", ".join(stored.summary.get("directory") or {}),
                }
            ],
        )
    work = app.config.data_dir / "cache" / "returns"
    work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="template-", dir=work))
    try:
        path = scratch / "return.xlsx"
        try:
            write_return_template(loaded_model(app, stored), code, quarter.strip(), path)
        except InputError as exc:
            raise ValidationFailed(
                "The return cannot be made.", problem_rows(exc, scratch)
            ) from None
        data = path.read_bytes()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    name = SAFE_FILE.sub("-", f"return-{code}-{quarter.strip()}.xlsx")
    with app.store.session() as db:
        app.store.audit(
            db,
            "download",
            user=who.user,
            obj=f"model {model_id} return template {code} {quarter.strip()}"[:200],
            ip=ip,
        )
    return data, name


# uploading filled-in returns ----------------------------------------------------------------


def _foreign_sheets(path: Path, name: str, code: str) -> list[dict[str, Any]]:
    """For a provider: the return sheets in a file that are another provider's."""
    from python_calamine import CalamineWorkbook

    from needsled.returns.read import parse_sheet

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception:
        return []
    found = []
    for sheet_name in book.sheet_names:
        rows = book.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False)
        sheet = parse_sheet(name, sheet_name, rows)
        if sheet is None or "provider" not in sheet.ident:
            continue
        given, cell = sheet.ident["provider"]
        if given != code:
            found.append(
                {
                    "file": name,
                    "sheet": sheet_name,
                    "cell": cell,
                    "value": given[:40],
                    "message": f"this is the return of provider {given}; you can upload only "
                    f"the returns of {code}",
                    "fix": f"upload only {code}'s returns (download yours from this page)",
                }
            )
    return found


def _save_files(files: Sequence[tuple[str, bytes]], folder: Path, limit: int) -> list[Path]:
    """The uploaded files in ``folder`` under their own names, or every problem with them."""
    problems: list[dict[str, Any]] = []
    if len(files) > MAX_RETURN_FILES:
        problems.append(
            {
                "file": "upload",
                "message": f"more than {MAX_RETURN_FILES} files at once",
                "fix": f"upload the returns {MAX_RETURN_FILES} or fewer at a time",
            }
        )
    total = sum(len(b) for _, b in files)
    if total > limit:
        problems.append(
            {
                "file": "upload",
                "message": f"the files come to {total / 1e6:.1f} MB, more than "
                f"{limit / 1e6:.0f} MB",
                "fix": "upload the returns (counts only), a few at a time",
            }
        )
    paths: list[Path] = []
    seen: set[str] = set()
    for raw, data in files:
        name = safe_name(Path(raw.replace("\\", "/")).name, "return.xlsx")
        if not name.lower().endswith(RETURN_FILES):
            problems.append(
                {
                    "file": name,
                    "message": "is not an Excel return",
                    "fix": "upload the filled-in .xlsx returns made on this page",
                }
            )
            continue
        if name.lower() in seen:
            problems.append(
                {"file": name, "message": "two files have this name", "fix": "rename one"}
            )
            continue
        seen.add(name.lower())
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    if not files:
        problems.append(
            {"file": "upload", "message": "no file was chosen", "fix": "choose returns"}
        )
    if not problems:  # a workbook is a zip: what it unpacks to is checked before it is read
        for path in paths:
            if path.suffix.lower() in WORKBOOKS:
                try:
                    workbook_size(path, path.name, MAX_UNPACKED)
                except ValidationFailed as exc:
                    problems += exc.problems
    if problems:
        raise ValidationFailed("The upload cannot be used; nothing was stored.", problems)
    return paths


def upload_returns(
    app: AppState, who: Principal, model_id: int, files: Sequence[tuple[str, bytes]], ip: str
) -> list[ProviderReturn]:
    """Check filled-in returns (every problem in every file at once) and store them; nothing
    is stored unless every file is clean. A provider may upload only their own code's
    returns. Returns the rows added or replaced."""
    from needsled.returns.read import read_returns

    stored, scope = _model(app, who, model_id)
    work = app.config.data_dir / "cache" / "returns"
    work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="upload-", dir=work))
    try:
        with audit_refusal(app, who, f"returns of model {model_id}", ip):
            paths = _save_files(files, scratch, app.config.max_upload_bytes)
            problems: list[dict[str, Any]] = []
            if scope is not None:
                for path in paths:
                    problems += _foreign_sheets(path, path.name, scope)
            try:
                imported = read_returns(paths, loaded_model(app, stored))
            except InputError as exc:
                problems = problem_rows(exc, scratch) + problems
            if problems:
                n = len(problems)
                raise ValidationFailed(
                    f"{n} problem{'s' if n != 1 else ''} in the returns; nothing was stored.",
                    problems,
                )
        try:
            return _store(app, who, stored, imported, ip)
        except IntegrityError:  # another upload of the same return got in first: replace it
            return _store(app, who, stored, imported, ip)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _store(
    app: AppState, who: Principal, stored: StoredModel, imported: Any, ip: str
) -> list[ProviderReturn]:
    frame: pd.DataFrame = imported.frame
    origin = {key: (Path(f.file).name, f.sha256) for f in imported.files for key in f.keys}
    keys = ["provider", "service", "area", "quarter"]
    now = utcnow()
    out: list[ProviderReturn] = []
    replaced = 0
    with app.store.session() as db:
        for key, part in frame.groupby(keys, sort=True):
            provider, service, area, quarter = (str(k) for k in key)
            counts = [
                [str(m), str(c), float(v)]
                for m, c, v in part[["measure", "category", "value"]].itertuples(index=False)
            ]
            filename, sha = origin.get((provider, service, area, quarter), ("", ""))
            row = db.scalar(
                select(ProviderReturn).where(
                    ProviderReturn.model_id == stored.id,
                    ProviderReturn.provider == provider,
                    ProviderReturn.service == service,
                    ProviderReturn.area == area,
                    ProviderReturn.quarter == quarter,
                )
            )
            if row is None:
                row = ProviderReturn(
                    organisation_id=stored.organisation_id,
                    model_id=stored.id,
                    provider=provider,
                    service=service,
                    area=area,
                    quarter=quarter,
                    replaced=0,
                )
                db.add(row)
            else:
                row.replaced += 1
                replaced += 1
            row.counts = counts
            row.filename = filename[:255]
            row.sha256 = sha
            row.uploaded_by_id = who.user.id
            row.uploaded_at = now
            out.append(row)
        db.flush()
        app.store.audit(
            db,
            "upload",
            user=who.user,
            obj=f"returns of model {stored.id}",
            outcome=f"ok: {len(out)} return(s) from {len(imported.files)} file(s), "
            f"{replaced} replaced",
            ip=ip,
        )
        for r in out:
            db.expunge(r)
    return out


# the suppressed outcome tables --------------------------------------------------------------


def _frame(rows: Sequence[ProviderReturn]) -> pd.DataFrame:
    records = [
        (r.provider, r.service, r.area, r.quarter, m, c, float(v))
        for r in rows
        for m, c, v in r.counts
    ]
    return pd.DataFrame.from_records(records, columns=list(COLUMNS))


def tables_of(rows: Sequence[ProviderReturn]) -> dict[str, pd.DataFrame]:
    """The five tables, always suppressed (the application has no switch to turn it off)."""
    from needsled.returns.outcomes import outcome_tables

    if not rows:
        return {}
    tables = outcome_tables(_frame(rows), suppress=True)
    return {name: tables[name] for name in OUTCOME_TABLES if name in tables}


def outcomes(app: AppState, who: Principal, model_id: int) -> dict[str, pd.DataFrame]:
    """The suppressed outcome tables of the returns the user sees on this model: every
    provider's for managers, their own for a provider."""
    return tables_of(returns_view(app, who, model_id).returns)


def page_tables(tables: Mapping[str, pd.DataFrame]) -> list[tuple[str, str, dict[str, Any]]]:
    """The tables as a page shows them: (name, title, ``table_json(page=True)``)."""
    return [(name, TITLES[name], table_json(t, page=True)) for name, t in tables.items()]


def outcome_csv(app: AppState, who: Principal, model_id: int, name: str, ip: str) -> str:
    """One suppressed outcome table as CSV (404 for a name that is not one of the five)."""
    if name not in OUTCOME_TABLES:
        raise NotFound()
    tables = outcomes(app, who, model_id)
    if name not in tables:
        raise NotFound("There are no returns to tabulate yet.")
    with app.store.session() as db:
        app.store.audit(
            db, "download", user=who.user, obj=f"model {model_id} returns {name}.csv", ip=ip
        )
    text: str = tables[name].to_csv(index=False)
    return text


def table_json(frame: pd.DataFrame, *, page: bool = False) -> dict[str, Any]:
    """A table as ``{"columns", "rows"}`` of text (as in its CSV). ``page``: without the
    ``suppression`` column, the same on every row (the page says it once, above the tables)."""
    if page:
        frame = frame.drop(columns=["suppression"], errors="ignore")
    shown = frame.astype(object).where(frame.notna(), "")
    return {
        "columns": [str(c) for c in shown.columns],
        "rows": [[str(v) for v in row] for row in shown.to_numpy()],
    }
