"""The input schema, declared once as data (``tables.csv``) and read here.

Every input table's columns are rows of ``tables.csv``: type, whether required, default,
allowed range or values, unit, whether an 80% interval may be given (as ``<column>_lo`` and
``<column>_hi``), and a description. Validation, defaults, the Excel template and the reference
table in the docs are all generated from it, so they cannot disagree.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = [
    "ALL_TABLES",
    "OPTIONAL_TABLES",
    "TABLES",
    "Column",
    "Table",
    "reference_markdown",
    "tables",
]

# Every model has these tables; any other table declared in tables.csv is optional (a model
# may leave it out), in the order it first appears there.
TABLES = ("areas", "offences", "crime", "pathway", "need_mix", "services", "staffing")


def _declared() -> tuple[str, ...]:
    text = resources.files("needsled.schema").joinpath("tables.csv").read_text(encoding="utf-8")
    names = dict.fromkeys(row["table"] for row in csv.DictReader(text.splitlines()))
    return tuple(names)


OPTIONAL_TABLES = tuple(t for t in _declared() if t not in TABLES)
ALL_TABLES = TABLES + OPTIONAL_TABLES

TYPE_HELP = {
    "gss": "a 9-character GSS code such as E09000001",
    "text": "any text",
    "code": "a short code of letters, digits, '-' or '_' (no spaces)",
    "month": "a month written YYYY-MM, such as 2024-03",
    "int": "a whole number",
    "float": "a number",
    "share": "a number between 0 and 1 (write 35% as 0.35)",
    "enum": "one of the allowed values",
}


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    type: str
    required: bool
    default: str
    min: float | None
    max: float | None
    allowed: tuple[str, ...]
    unit: str
    interval: bool
    description: str

    @property
    def numeric(self) -> bool:
        return self.type in {"int", "float", "share"}

    def default_value(self) -> float | str | None:
        if self.default == "":
            return None
        return float(self.default) if self.numeric else self.default

    def rule(self) -> str:
        """The allowed values in plain words, for messages, docs and the template."""
        if self.allowed:
            return "one of " + ", ".join(self.allowed)
        text = TYPE_HELP[self.type]
        if self.numeric and self.type != "share":
            if self.min is not None and self.max is not None:
                text += f" from {self.min:g} to {self.max:g}"
            elif self.min is not None:
                text += f" of at least {self.min:g}"
        return text


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def all_names(self) -> tuple[str, ...]:
        """Column names including the optional ``_lo``/``_hi`` interval columns."""
        out: list[str] = []
        for c in self.columns:
            out.append(c.name)
            if c.interval:
                out += [f"{c.name}_lo", f"{c.name}_hi"]
        return tuple(out)


def _num(text: str) -> float | None:
    return float(text) if text.strip() else None


@cache
def tables() -> dict[str, Table]:
    """All input tables, required then optional, in the order users fill them in."""
    text = resources.files("needsled.schema").joinpath("tables.csv").read_text(encoding="utf-8")
    cols: dict[str, list[Column]] = {name: [] for name in ALL_TABLES}
    for row in csv.DictReader(text.splitlines()):
        cols[row["table"]].append(
            Column(
                table=row["table"],
                name=row["column"],
                type=row["type"],
                required=row["required"] == "yes",
                default=row["default"],
                min=_num(row["min"]),
                max=_num(row["max"]),
                allowed=tuple(v for v in row["allowed"].split("|") if v),
                unit=row["unit"],
                interval=row["interval"] == "yes",
                description=row["description"],
            )
        )
    return {name: Table(name, tuple(c)) for name, c in cols.items()}


def reference_markdown() -> str:
    """The reference table for the docs, one section per input table."""
    lines = [
        "# Input reference",
        "",
        "Generated from `src/needsled/schema/tables.csv` by",
        "`needsled schema`; do not edit by hand.",
        "",
    ]
    for table in tables().values():
        lines += [
            f"## `{table.name}`" + (" (optional)" if table.name in OPTIONAL_TABLES else ""),
            "",
            "| column | required | default | allowed | unit | 80% interval | meaning |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in table.columns:
            interval = f"`{c.name}_lo`, `{c.name}_hi`" if c.interval else ""
            lines.append(
                f"| `{c.name}` | {'yes' if c.required else 'no'} | {c.default} | {c.rule()} "
                f"| {c.unit} | {interval} | {c.description} |"
            )
        lines.append("")
    return "\n".join(lines)
