"""Scenarios: named sets of levers, each with a time profile, read from YAML.

A lever changes one thing from a start month, as a step or as a linear ramp, optionally only
for some offences, areas or services, and may carry an 80% interval for its size. The file also
holds the run settings (first projected month, horizon, time step).

Example::

    horizon_months: 60
    scenarios:
      - name: baseline
      - name: reports-up-20pc
        description: Police reports up 20%, ramped over two years
        levers:
          - lever: police_reports
            change: 0.20
            interval: [0.10, 0.30]
            profile: ramp
            ramp_months: 24
"""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "LEVERS",
    "Lever",
    "ScenarioFile",
    "Settings",
    "month_index",
    "month_label",
    "scenarios_markdown",
]

LeverName = Literal[
    "police_reports",
    "referral_share",
    "referral_model",
    "self_referral",
    "support_duration",
    "fte",
    "cost_per_fte",
    "funding_envelope",
]
LEVERS: dict[str, str] = {
    "police_reports": "Police recorded crimes change by `change` (0.2 = +20%)",
    "referral_share": "The share of recorded victims the police refer on changes by `change`",
    "referral_model": "Police referral switches to `value` (opt-in or opt-out)",
    "self_referral": "Self- and partner referrals change by `change` (e.g. an awareness campaign)",
    "support_duration": "Support lasts `change` longer (e.g. court delays keep ISVA cases open)",
    "fte": "Staff change by `change` (relative) and/or `add` FTE per area",
    "cost_per_fte": "The cost of one FTE changes by `change`",
    "funding_envelope": "The money available a year, `value` in £, to set the shortfall against",
}
DEMAND_LEVERS = ("police_reports", "referral_share", "referral_model", "self_referral")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def month_index(label: str) -> int:
    """Months since year 0: '2025-04' -> 2025*12 + 3."""
    return int(label[:4]) * 12 + int(label[5:7]) - 1


def month_label(index: int) -> str:
    return f"{index // 12}-{index % 12 + 1:02d}"


class Lever(BaseModel):
    """One change in a scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lever: LeverName = Field(
        description="What changes: " + "; ".join(f"{k}: {v}" for k, v in LEVERS.items())
    )
    change: float | None = Field(
        None, ge=-1.0, le=10.0, description="Relative change: 0.2 means +20%, -0.1 means -10%"
    )
    add: float | None = Field(None, description="FTE added per area served (fte lever only)")
    value: str | float | None = Field(
        None,
        description="New value (referral_model: opt-in or opt-out; funding_envelope: £ a year)",
    )
    interval: tuple[float, float] | None = Field(
        None, description="80% interval for `change` (or `add`), e.g. [0.1, 0.3]"
    )
    profile: Literal["step", "ramp"] = Field(
        "step",
        description="step: all at once from "
        "`start`; ramp: a straight line to full size "
        "over `ramp_months`",
    )
    start: str | None = Field(
        None, description="First month the lever acts, YYYY-MM (default: the first projected month)"
    )
    ramp_months: int = Field(12, ge=1, le=240, description="Months to reach full size (ramp)")
    offences: tuple[str, ...] | None = Field(None, description="Only these offences")
    areas: tuple[str, ...] | None = Field(None, description="Only these area codes")
    services: tuple[str, ...] | None = Field(None, description="Only these services")

    @field_validator("start")
    @classmethod
    def _month(cls, v: str | None) -> str | None:
        if v is not None and not MONTH.match(str(v)):
            raise ValueError(f"start must be a month written YYYY-MM, not {v!r}")
        return v

    @model_validator(mode="after")
    def _fits(self) -> Lever:
        if self.lever == "referral_model":
            if self.value not in ("opt-in", "opt-out"):
                raise ValueError("referral_model needs value: opt-in or value: opt-out")
        elif self.lever == "funding_envelope":
            if not isinstance(self.value, int | float) or self.value < 0:
                raise ValueError("funding_envelope needs value: the £ a year available")
        elif self.lever == "fte":
            if self.change is None and self.add is None:
                raise ValueError("the fte lever needs change (relative) or add (FTE per area)")
        elif self.change is None:
            raise ValueError(f"the {self.lever} lever needs change (0.2 means +20%)")
        if self.interval is not None:
            lo, hi = self.interval
            mid = self.change if self.change is not None else self.add
            if mid is None or not lo <= mid <= hi:
                raise ValueError(
                    f"interval {list(self.interval)} must contain the lever's "
                    f"change ({mid}) with the low end first"
                )
        return self

    @property
    def size(self) -> float:
        """The lever's point size: `change`, or `add` for an fte lever with only `add`."""
        if self.change is not None:
            return self.change
        return self.add if self.add is not None else 0.0

    def label(self) -> str:
        what = self.lever.replace("_", " ")
        if self.lever == "referral_model":
            return f"referral model {self.value}"
        if self.lever == "fte" and self.change is None:
            return f"FTE {self.add:+g} per area"
        return f"{what} {self.size:+.0%}"

    def profile_weights(self, months: NDArray[np.int64], first_month: int) -> NDArray[np.float64]:
        """The share of the lever's full size in force in each month (0 to 1)."""
        start = month_index(self.start) if self.start else first_month
        if self.profile == "step":
            return (months >= start).astype(np.float64)
        return np.clip((months - start + 1) / self.ramp_months, 0.0, 1.0)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        max_length=60,
        description="Short name used on the command line, e.g. reports-up-20pc",
    )
    description: str = Field("", description="What the scenario means, in plain words")
    levers: tuple[Lever, ...] = Field((), description="The changes from the baseline")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str | None = Field(
        None,
        max_length=120,
        description="What the model is called in reports and on the web pages (default: "
        "the name of its folder or workbook)",
    )
    start: str | None = Field(
        None,
        description="First projected month, YYYY-MM (default: "
        "the month after the last month of crime history)",
    )
    horizon_months: int = Field(60, ge=1, le=240, description="Months to project")
    step: Literal["month", "week"] = Field("month", description="Time step of the flow model")
    wait_buckets_months: int = Field(
        36,
        ge=1,
        le=120,
        description="Waits are kept by time waited up to this many months; longer waits are pooled",
    )
    forecast_method: str | None = Field(
        None,
        description="Forecasting method (default: the "
        "one chosen by backtests, see docs/forecasting.md)",
    )

    @field_validator("start")
    @classmethod
    def _month(cls, v: str | None) -> str | None:
        if v is not None and not MONTH.match(str(v)):
            raise ValueError(f"start must be a month written YYYY-MM, not {v!r}")
        return v


class ScenarioFile(Settings):
    """The whole YAML file: settings at the top level, then the scenarios."""

    scenarios: tuple[Scenario, ...] = Field(
        (Scenario(name="baseline"),), min_length=1, description="Named scenarios"
    )

    @model_validator(mode="after")
    def _unique(self) -> ScenarioFile:
        names = [s.name for s in self.scenarios]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"scenario names must be unique; repeated: {', '.join(repeated)}")
        return self

    @property
    def settings(self) -> Settings:
        return Settings(**{k: getattr(self, k) for k in Settings.model_fields})


def scenarios_markdown() -> str:
    """The reference for scenarios.yaml, generated from the models above."""
    lines = [
        "# Scenarios file (`scenarios.yaml`)",
        "",
        "Top-level settings, then a list `scenarios`, each with a list of `levers`.",
        "",
    ]
    for title, model in (
        ("Settings (top level)", Settings),
        ("Scenario", Scenario),
        ("Lever", Lever),
    ):
        lines += [f"## {title}", "", "| key | default | meaning |", "|---|---|---|"]
        for name, f in model.model_fields.items():
            default = "" if f.is_required() else repr(f.default).replace("|", "/")
            text = (f.description or "").replace("|", "/")
            lines.append(f"| `{name}` | {default} | {text} |")
        lines.append("")
    lines += ["## Levers", "", "| lever | what it does |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in LEVERS.items()]
    return "\n".join(lines) + "\n"
