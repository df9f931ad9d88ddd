"""Who delivers what, where: the providers in a model's ``directory`` table.

A provider delivers each service it has a directory row for, in the areas that row lists, or,
where ``areas`` is blank, in every area the service serves (the areas the ``staffing`` table has
rows for). Returns are asked for, and accepted, for exactly these services and areas.
Nothing here reads files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from needsled.errors import InputError, Problem

if TYPE_CHECKING:
    from needsled.model import Model

__all__ = ["DIRECTORY_FIX", "Provider", "provider", "providers"]

_SPLIT = re.compile(r"[\s,;]+")
DIRECTORY_FIX = (
    "add a directory table to the model (directory.csv, or a 'directory' sheet in the model "
    "workbook) with one row per provider and service: columns service, provider, "
    "provider_name and areas (see docs/returns.md)"
)


@dataclass(frozen=True)
class Provider:
    """One provider: its code, its name, and the areas it covers for each service it delivers
    (services and areas in the model's order)."""

    code: str
    name: str
    services: tuple[tuple[str, tuple[str, ...]], ...]

    def delivers(self, service: str, area: str) -> bool:
        return any(s == service and area in areas for s, areas in self.services)

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """Every (service, area) it delivers: one return sheet each."""
        return tuple((s, a) for s, areas in self.services for a in areas)


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def providers(model: Model, what: str = "the model") -> dict[str, Provider]:
    """The model's providers by code, from its ``directory`` table.

    Raises :class:`InputError` when the model has no directory table, or a row lists an area
    code the model does not have.
    """
    directory = model.tables.get("directory")
    if directory is None or directory.empty:
        raise InputError(
            [
                Problem(
                    file="directory table",
                    message="the model has no directory table, so needsled does not know which "
                    "provider delivers which service in which area",
                    fix=DIRECTORY_FIX,
                )
            ],
            what,
        )
    service_index = {s: i for i, s in enumerate(model.services.codes)}
    area_index = {a: i for i, a in enumerate(model.area_codes)}
    problems: list[Problem] = []
    found: dict[str, dict[str, tuple[str, ...]]] = {}
    names: dict[str, str] = {}
    for rec in directory.to_dict("records"):
        service, code = _text(rec["service"]), _text(rec["provider"])
        names.setdefault(code, _text(rec["provider_name"]) or code)
        listed = tuple(t for t in _SPLIT.split(_text(rec.get("areas")).strip()) if t)
        unknown = [a for a in listed if a not in area_index]
        if unknown:
            problems.append(
                Problem(
                    file="directory table",
                    row=int(rec.get("_row", 0)) or None,
                    column="areas",
                    value=_text(rec.get("areas")),
                    message=f"area code(s) {', '.join(unknown)} are not in the areas table",
                    fix="use GSS codes from the areas table, or leave areas blank for every "
                    "area the service serves",
                )
            )
            continue
        s = service_index[service]
        areas = listed or tuple(a for a, i in area_index.items() if model.staffing.served[i, s])
        found.setdefault(code, {})[service] = tuple(sorted(set(areas), key=area_index.__getitem__))
    if problems:
        raise InputError(problems, what)
    return {
        code: Provider(
            code,
            names[code],
            tuple((s, by[s]) for s in sorted(by, key=service_index.__getitem__)),
        )
        for code, by in sorted(found.items())
    }


def provider(model: Model, code: str, what: str = "the model") -> Provider:
    """One provider by code; an unknown code is an :class:`InputError` listing the codes."""
    known = providers(model, what)
    if code not in known:
        raise InputError(
            [
                Problem(
                    file="directory table",
                    column="provider",
                    value=code,
                    message="no provider with this code in the directory table (its providers: "
                    f"{', '.join(known) or 'none'})",
                    fix="give one of those codes with --provider, or add a row for the "
                    "provider to the directory table",
                )
            ],
            what,
        )
    return known[code]
