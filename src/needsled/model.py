"""The validated model: frozen objects holding NumPy arrays, ready for the pure core.

Indices throughout: area ``a``, offence ``o``, service ``s``, month ``t``, replicate ``r``.
Nothing here reads files: ``needsled.io.load`` builds a :class:`Model` from the user's tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from needsled.scenarios import Scenario, Settings, month_index, month_label

__all__ = ["Model", "Pathway", "Services", "Staffing", "Uncertain"]

F64 = NDArray[np.float64]
# An 80% interval [lo, hi] is a Normal with sd (hi - lo) / (2 x 1.28155) = (hi - lo) / 2.5631.
Z80_WIDTH = 2.5631


@dataclass(frozen=True)
class Uncertain:
    """A parameter given as a point, or as an 80% interval ``[lo, hi]`` (NaN where not given).

    Each replicate draws it from a Normal with mean ``(lo + hi) / 2`` and sd
    ``(hi - lo) / 2.5631``, clipped to the parameter's valid range ``[lower, upper]``
    (model.md section 3). The deterministic run uses ``value``.
    """

    value: F64
    lo: F64
    hi: F64
    lower: float = 0.0
    upper: float = np.inf

    @classmethod
    def point(cls, value: F64, lower: float = 0.0, upper: float = np.inf) -> Uncertain:
        nan = np.full_like(value, np.nan, dtype=np.float64)
        return cls(np.asarray(value, dtype=np.float64), nan, nan.copy(), lower, upper)

    @property
    def has_interval(self) -> bool:
        return bool(np.any(~np.isnan(self.lo)))

    def draw(self, rng: np.random.Generator, n: int) -> F64:
        """``n`` draws, shape ``(n, *value.shape)``; points are repeated unchanged."""
        out = np.broadcast_to(self.value, (n, *self.value.shape)).copy()
        if not self.has_interval:
            return out
        given = ~np.isnan(self.lo)
        mean = (self.lo + self.hi) / 2.0
        sd = (self.hi - self.lo) / Z80_WIDTH
        z = rng.standard_normal((n, *self.value.shape))
        drawn = np.clip(mean + sd * z, self.lower, self.upper)
        return np.where(given, drawn, out)


@dataclass(frozen=True)
class Pathway:
    """Rates of the victim journey by area and offence, shape (A, O) each."""

    report_share: Uncertain
    referral_share: Uncertain
    consent_opt_in: Uncertain
    consent_opt_out: Uncertain
    prevalence: Uncertain
    help_seeking: Uncertain
    contact_share: Uncertain
    decline_share: Uncertain
    priority_share: Uncertain
    opt_out: NDArray[np.bool_]

    RATES = (
        "report_share",
        "referral_share",
        "consent_opt_in",
        "consent_opt_out",
        "prevalence",
        "help_seeking",
        "contact_share",
        "decline_share",
        "priority_share",
    )


@dataclass(frozen=True)
class Services:
    """One entry per service, shape (S,) each."""

    codes: tuple[str, ...]
    names: tuple[str, ...]
    types: tuple[str, ...]
    stretch: NDArray[np.bool_]
    places_per_fte: F64
    duration_weeks: Uncertain
    duration_cv: F64
    drop_out_per_month: Uncertain
    target_wait_weeks: F64
    cost_per_fte: Uncertain
    priority_first: NDArray[np.bool_]
    reengage_share: Uncertain
    reengage_after_weeks: F64

    def __len__(self) -> int:
        return len(self.codes)


@dataclass(frozen=True)
class Staffing:
    """Service by area, shape (A, S) each; ``served`` says where a service exists."""

    served: NDArray[np.bool_]
    fte: F64
    waiting_start: F64
    waiting_start_mean_weeks: F64
    open_start: F64


@dataclass(frozen=True)
class Model:
    name: str
    area_codes: tuple[str, ...]
    area_names: tuple[str, ...]
    adult_population: F64
    offence_codes: tuple[str, ...]
    offence_names: tuple[str, ...]
    crime_history: F64  # (A, O, H) recorded crimes a month
    history_end: str  # last month of history, YYYY-MM
    pathway: Pathway
    need_mix: Uncertain  # (O, S)
    services: Services
    staffing: Staffing
    scenarios: tuple[Scenario, ...]
    settings: Settings
    provenance: dict[str, str] = field(default_factory=dict)
    assumptions: tuple[tuple[str, str, str, str], ...] = ()  # (table, item, value, source)
    # Optional tables the model gave (validated, defaults filled in), by table name; each
    # feature that uses one builds its own arrays from it.
    tables: Mapping[str, pd.DataFrame] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def first_month(self) -> int:
        """Month index of the first projected month."""
        if self.settings.start:
            return month_index(self.settings.start)
        return month_index(self.history_end) + 1

    @property
    def months(self) -> tuple[str, ...]:
        first = self.first_month
        return tuple(month_label(first + i) for i in range(self.settings.horizon_months))

    def scenario(self, name: str) -> Scenario:
        for sc in self.scenarios:
            if sc.name == name:
                return sc
        known = ", ".join(s.name for s in self.scenarios)
        raise KeyError(f"no scenario named {name!r}; the model has: {known}")
