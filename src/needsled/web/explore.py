"""The scenario explorer's computation service: what the page shows when a colleague moves a lever.

One :class:`Explorer` per loaded model, kept by the web application between requests. In
``__init__`` it does the work that does not depend on the levers: the crime forecast (one
sample path per replicate), the draws of every uncertain parameter, and the model's first
scenario as it stands (each other scenario as it stands is computed the first time it is
asked for, then kept: every result is shown beside it). :meth:`Explorer.evaluate` then does
only what the levers change:

- demand levers (police reports, referral share and model, self-referral) recompute expected
  referrals (the last four are kept) and run the flow engine for every service;
- a service's staff or support length runs the engine for that service alone: each service
  of each chain draws from its own random stream (``needsled.flow``), so a service's part of
  a run depends only on the demand levers and its own levers, and every other service is
  taken from a part kept for the same settings; runs are kept service by service, reduced to
  what the page shows: each scenario's services as the scenario stands for good, and the
  others simulated most lately, up to 512 MB (the six services at about twenty
  colleagues' settings, for the London example at 200 replicates);
- the cost of an FTE runs no engine: the shortfall's cost is worked out from a kept run's
  FTE shortfall, area by area and replicate by replicate, as the engine run works it out;
- the money available and the year shown only rebuild the headline, the summary and the
  shortfall chart, from the all-areas figures of the last 24 engine runs, which are kept;
- a whole result is kept for the last 32 settings, so a slider moved back is instant.

**Exactness.** A moved lever is appended to the base scenario as a step change from the first
projected month, and the scenario keeps its name, so it shares every random number with the
base run (forecast paths, parameter draws, lever sizes, each service's stream seeds): the
difference between the two is the levers' effect, not noise, and a lever on one service
leaves every other service's figures exactly as they were, in the explorer as in a run. Every
figure is the one ``needsled.projection.run`` and ``needsled.results`` give for
:meth:`Explorer.scenario` (the base with the levers appended) at the same seed and
replicates, summarised and rounded in the same way, and the charts are ``needsled.charts``'
own, drawn from those tables (altair makes each kind's spec once per set of labels; later
ones are that spec with new rows, see :meth:`Explorer._chart`); tests/web_explore checks it.

**Speed.** What a full result (200 replicates, the London example) costs depends on the lever:
benchmarks/bench_explore.py prints each kind and its parts. The cost of an FTE, the money
available and the year shown run no engine (0.05 s or less); a service's staff or support
length runs the engine for that service alone, the first as the last (about 0.15 s: the engine
0.1 s for its 6,400 chains, then the same tables, headline and charts as any result); demand
levers run every service (about 0.8 s: the engine's 6,400 chains of six services take about
0.5 s on two idle cores, 0.9 s of CPU, and turning their outputs into the page's figures about
0.25 s more), so they cannot meet 0.3 s. :meth:`Explorer.preview` is the fast path: the same
result from the deterministic run alone (the central line, no 80% band), in 0.01-0.03 s, for
the page to show while a slider moves, and replace with :meth:`Explorer.evaluate`'s when it
rests. The tables behind the headline, the summary and the charts are held column by column
(:class:`_Table`), not as DataFrames, which are slow to make for a few hundred rows.

**Threads.** Results are computed on worker threads of their kind (one for previews, two for
full results that run the engine for one service at most, one for *heavy* full results that
run it for several, at the lowest priority: see :func:`_worker` and :meth:`Explorer.heavy`),
so the memory a computation needs is held a few times however many threads a web server
answers from, a preview never waits behind a full result, and a quick full result never
waits behind a heavy one. The kept runs are read and written under the explorer's lock;
the engine runs outside it, and without the interpreter lock. Results are shared between
callers: treat them as read-only. Pure: no files, no web framework.
"""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
import math
import os
import re
import sys
import threading
import time
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from needsled import charts, report
from needsled.demand import (
    Draws,
    LeverSizes,
    draw_parameters,
    lever_sizes,
    point_parameters,
    referrals,
)
from needsled.flow import FlowOutputs, draw_arrivals, simulate
from needsled.forecast import DEFAULT_METHOD, forecast
from needsled.model import Model
from needsled.projection import (
    Chunk,
    ScenarioResult,
    as_slice,
    capacity,
    chunk_inputs,
    chunk_metrics,
    fte_needed,
    fte_shortfall,
    history_before_start,
    run_chunk,
    with_total,
)
from needsled.projection import cost_shortfall as shortfall_cost
from needsled.results import ALL_AREAS, financial_years, rounded_values, yearly
from needsled.scenarios import Lever, Scenario
from needsled.stats import summarise

__all__ = ["Explorer", "LeverSpec", "lever_specs"]

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
DEMAND_KINDS = ("police_reports", "referral_share", "referral_model", "self_referral")
ENGINE_KINDS = (*DEMAND_KINDS, "fte", "support_duration", "cost_per_fte")
# the engine's per-area metrics the page needs (summed or weighted to all areas)
KEPT: tuple[str, ...] = ("referrals", "starts", "waiting", "open_cases", "mean_wait_weeks")
KEPT += ("within_target_share", "capacity", "fte", "fte_needed", "fte_shortfall")
KEPT += ("cost_shortfall", "caseload_per_fte")
MONTHLY = ("referrals", "capacity", "waiting", "caseload_per_fte")  # charts and headline
YEARLY: tuple[str, ...] = ("referrals", "waiting", "mean_wait_weeks", "within_target_share")
YEARLY += ("fte", "fte_needed", "fte_shortfall", "cost_shortfall")  # the summary's figures
FLOWS = ("referrals", "starts", "drop_outs", "completions")
STOCKS = ("waiting", "open_cases")
WEIGHTED = ("mean_wait_weeks", "within_target_share")
# the engine's per-area metrics, before the FTE needed (all summed or weighted to all areas)
SIMULATED: tuple[str, ...] = ("referrals", "starts", "waiting", "open_cases", "mean_wait_weeks")
SIMULATED += ("within_target_share", "capacity", "fte", "caseload_per_fte")
TOTALS = (*SIMULATED, "fte_needed", "fte_shortfall")  # cost_shortfall: per cost setting
FLAGGED: tuple[str, ...] = ("referrals", "capacity", "waiting", "caseload_per_fte", "fte")
FLAGGED += ("fte_needed",)
FLAGGED += ("fte_shortfall", "cost_shortfall")  # MONTHLY and YEARLY, but the weighted ones
SERVICE_KINDS = ("fte", "support_duration")  # levers on one service's engine inputs
RESULTS_KEPT, FLOWS_KEPT, DEMANDS_KEPT = 32, 24, 4
DETS_KEPT = 2 * FLOWS_KEPT  # deterministic runs (about 0.6 MB each): previews' and fulls'
# services' parts of runs at settings other than a scenario's as it stands, kept up to this
# many bytes (the London example at 200 replicates: about 4 MB a part, so some 125 parts, the
# six services at about twenty colleagues' settings at once: with fewer, over a few minutes
# every colleague's demand levers are moved and the parts push one another out)
SERVICES_KEPT_BYTES = 512 * 2**20
# each service's referrals as the engine drew them, by (scenario, demand levers, service), kept
# up to this many bytes (3 MB a service in the London example at 200 replicates): a lever on
# that service's staff or support length meets the same referrals, so its engine run reads
# them instead of drawing them again (a fifth of the engine's time)
DRAWN_KEPT_BYTES = 96 * 2**20
NO_AREAS = np.arange(0)  # capacity() for the cost per FTE alone
# threads computing each kind of result: two for quick full results, so that one's Python
# goes on while the other's engine runs (on two cores, one at a time left a core idle for
# much of each answer, and under twenty colleagues' load they queued)
LANE_THREADS = {"preview": 1, "full": 2, "heavy": 1}
# how much lower than the server's the operating system's priority of each lane's threads is
# (a nice increment, Linux): a heavy result (about 0.8 s on two idle cores) takes only the CPU
# that previews and quick results leave, so under load they do not wait for it; on an idle
# machine it runs as fast as before
LANE_NICE = {"preview": 0, "full": 0, "heavy": 19}
_WORKERS: dict[str, ThreadPoolExecutor] = {}
_WORKERS_LOCK = threading.Lock()


def _worker(lane: str) -> ThreadPoolExecutor:
    """The threads that compute every explorer's results of a kind: ``preview``, ``full``
    (full results that run the engine for one service at most) or ``heavy`` (those that run
    it for several: a demand lever moved); :data:`LANE_THREADS` says how many.

    A few threads, not the caller's: a web server answers from a pool of threads, and glibc
    gives each thread its own malloc arena, which keeps the largest working set it has held
    (about 0.5 GB for a heavy result of the London example at 200 replicates, far less for a
    quick one). Computed on a few threads, that memory is held a few times, not once per
    server thread, so the server's memory stays bounded. Previews have their own thread, so
    that they never wait behind a full result, and heavy results (about 0.8 s on two idle
    cores) theirs, so that the quick ones (0.2 s or less) do not queue behind them; quick
    ones have two, since the engine runs without the interpreter lock: one's Python goes on
    while the other's engine runs. Heavy results run at the lowest priority
    (:data:`LANE_NICE`): under load they take the CPU the others leave, and the many previews
    and quick results do not wait for them (a heavy result is past a second either way).
    """
    with _WORKERS_LOCK:
        if lane not in _WORKERS:
            _WORKERS[lane] = ThreadPoolExecutor(
                LANE_THREADS[lane],
                thread_name_prefix=f"needsled-explore-{lane}",
                initializer=lower_priority,
                initargs=(LANE_NICE[lane],),
            )
        return _WORKERS[lane]


def lower_priority(increment: int) -> bool:
    """Lower the calling thread's scheduling priority by ``increment`` nice steps (at most to
    19, the lowest), and so that of the threads it starts later (the engine's parallel
    workers, which inherit it). Linux only (elsewhere a process has one priority for all its
    threads, and this does nothing); returns whether it was lowered."""
    if increment <= 0 or not sys.platform.startswith("linux"):
        return False
    me = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, me)
        os.setpriority(os.PRIO_PROCESS, me, min(19, now + increment))
    except OSError:  # not allowed here: run at the server's priority
        return False
    return True


RANGE = re.compile(r" \(([^()–]+)–\1\)")  # "(12–12)": a range with nothing in it


@dataclass(frozen=True)
class LeverSpec:
    """One control on the page: a lever of ``lever`` kind (None: a view setting)."""

    key: str
    label: str
    group: str
    unit: str
    min: float
    max: float
    step: float
    default: float
    lever: str | None
    services: tuple[str, ...] | None = None
    offences: tuple[str, ...] | None = None
    value: str | None = None  # referral_model: the model it switches to
    help: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["name"] = self.key  # the web app's name for the key
        for k in ("services", "offences"):
            out[k] = None if out[k] is None else list(out[k])
        return out

    def to_lever(self, x: float) -> Lever | None:
        """The scenario lever this setting adds (None at its default, or for a view setting):
        a step from the first projected month, everywhere the control says."""
        if self.lever is None or x == self.default:
            return None
        if self.lever == "referral_model":
            return Lever(lever="referral_model", value=self.value, offences=self.offences)
        if self.lever == "funding_envelope":
            return Lever(lever="funding_envelope", value=float(x))
        return Lever.model_validate(
            {"lever": self.lever, "change": x / 100.0, "services": self.services}
        )

    def describe(self, x: float) -> str:
        """The setting in plain words, e.g. "Police recorded crimes: +20%"."""
        if self.unit == "%":
            return f"{self.label}: {x:+g}%"
        if self.lever == "funding_envelope":
            return f"{self.label}: {_money(x)}"
        return self.label


# (lever kind, label, help): the demand levers, each -50% to +100% everywhere
DEMAND_LEVERS = (
    ("police_reports", "Police recorded crimes", "Crimes reported to the police, every offence"),
    ("referral_share", "Share of recorded victims the police refer", "Never more than everyone"),
    ("self_referral", "Self- and partner referrals", "For example after an awareness campaign"),
)
# (lever kind, label before the service's name, group, help): one lever per service
SERVICE_LEVERS = (
    ("fte", "Staff (FTE)", "Staff", "Staff in post in every area"),
    ("support_duration", "How long support lasts", "Support", "For example court delays"),
)


def _percent(key: str, label: str, group: str, lever: str, help_text: str, **kw: Any) -> LeverSpec:
    """A relative change from -50% to +100% in steps of 5%."""
    return LeverSpec(key, label, group, "%", -50.0, 100.0, 5.0, 0.0, lever, help=help_text, **kw)


def lever_specs(model: Model) -> list[LeverSpec]:
    """The levers a page can move for this model, with their ranges, in page order.

    Demand: police recorded crimes, the share the police refer, self-referrals (each -50% to
    +100%), and a switch per offence to the other referral model (opt-out or opt-in). Staff
    and support: FTE and support duration by service (-50% to +100%). Money: the cost of one
    FTE (-20% to +50%) and the money available a year, set against the shortfall's cost (£0
    to twice today's whole staff bill, rounded up to £1m). View: the April-to-March year shown.
    """
    sv = model.services
    out = [_percent(kind, label, "Demand", kind, text) for kind, label, text in DEMAND_LEVERS]
    for o, (code, name) in enumerate(zip(model.offence_codes, model.offence_names, strict=True)):
        now_out = bool(model.pathway.opt_out[:, o].all())  # then the switch is to opt-in
        words = "Consent first (opt-in)" if now_out else "Automatic (opt-out)"
        text = "1 switches every area to it; 0 keeps each area's own"
        out.append(
            LeverSpec(
                f"referral_model.{code}",
                f"{words} police referral: {name}",
                "Demand",
                "off/on",
                0.0,
                1.0,
                1.0,
                0.0,
                "referral_model",
                offences=(code,),
                value="opt-in" if now_out else "opt-out",
                help=text,
            )
        )
    for kind, label, group, text in SERVICE_LEVERS:
        out += [
            _percent(
                f"{kind}.{sv.codes[s]}",
                f"{label}: {sv.names[s]}",
                group,
                kind,
                text,
                services=(sv.codes[s],),
            )
            for s in np.flatnonzero(_served_any(model))
        ]
    bill = float((model.staffing.fte * sv.cost_per_fte.value[None]).sum())
    envelope_top = max(1e6, float(np.ceil(2 * bill / 1e6) * 1e6))
    years = _year_starts(model)
    first, last = float(years[0]), float(years[-1])
    return [
        *out,
        LeverSpec(
            "cost_per_fte",
            "Cost of one FTE",
            "Money",
            "%",
            -20.0,
            50.0,
            5.0,
            0.0,
            "cost_per_fte",
            help="Pay, on-costs and overheads of one full-time post",
        ),
        LeverSpec(
            "funding_envelope",
            "Money available a year to close the gap",
            "Money",
            "£ a year",
            0.0,
            envelope_top,
            100_000.0,
            0.0,
            "funding_envelope",
            help="Set against the cost of the shortfall; 0: not set",
        ),
        LeverSpec(
            "year",
            "Year shown (April to March, starting in)",
            "View",
            "year",
            first,
            last,
            1.0,
            last,
            None,
            help="The year of the summary, the headline and the shortfall by area",
        ),
    ]


def _year_starts(model: Model) -> list[int]:
    labels = dict.fromkeys(financial_years(model.months).tolist())
    return [int(y[:4]) for y in labels]


@dataclass
class _Flow:
    """One engine run, reduced to what the page shows: all-areas arrays, (R, 1, S, T) over
    replicates and (1, 1, S, T) for the deterministic run; per-area FTE shortfall by year
    (deterministic, then the mean over replicates); whether each metric's full array held
    NaN (which picks the summarising path, see :func:`_summarise_as`); and the tables and
    charts built from it so far, by scenario label (and year)."""

    stoch: dict[str, F32]
    det: dict[str, F64]
    area_shortfall: F64  # (2, A, S, Y)
    monthly_nan: dict[str, bool]
    yearly_nan: dict[str, bool]
    single: bool = False  # the replicates are the deterministic run alone (a preview)
    tables: dict[str, tuple[_Table, _Table, F64]] = field(default_factory=dict)
    charts: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # ms to build it


class Explorer:
    """The explorer's computations for one model (see the module docstring)."""

    def __init__(self, model: Model, replicates: int = 200, seed: int = 20240401) -> None:
        if replicates < 1:
            raise ValueError(f"replicates must be at least 1, not {replicates}")
        self.model, self.replicates, self.seed = model, int(replicates), int(seed)
        t0 = time.perf_counter()
        history = history_before_start(model)
        n_a, n_o = history.shape[:2]
        horizon = model.settings.horizon_months
        fc = forecast(  # exactly as needsled.projection.run calls it
            history.reshape(n_a * n_o, -1),
            horizon,
            self.replicates,
            np.random.default_rng([self.seed, 1]),
            method=model.settings.forecast_method or DEFAULT_METHOD,
            groups=np.tile(np.arange(n_o), n_a),
        )
        self._paths = fc.paths.reshape(self.replicates, n_a, n_o, horizon)
        self._crime_mean = fc.mean.reshape(n_a, n_o, horizon)
        self._draws = draw_parameters(model, self.replicates, np.random.default_rng([seed, 2]))
        self._point = point_parameters(model)
        self._specs = {s.key: s for s in lever_specs(model)}
        self._years = financial_years(model.months)
        self._year_labels = list(dict.fromkeys(self._years.tolist()))
        self._spans = _spans(self._years, self._year_labels)
        months = np.asarray(model.months)
        self._year_months = {y: months[self._years == y] for y in self._year_labels}
        self._services = dict(zip(model.services.codes, model.services.names, strict=True))
        self._areas = dict(zip(model.area_codes, model.area_names, strict=True))
        self._cache_lock = threading.Lock()
        self._demand: OrderedDict[tuple[Any, ...], F64] = OrderedDict()
        self._drawn: OrderedDict[tuple[Any, ...], F32] = OrderedDict()
        self._flows: OrderedDict[tuple[Any, ...], _Flow] = OrderedDict()
        self._dets: OrderedDict[tuple[Any, ...], dict[str, F32]] = OrderedDict()
        # each service's part of a stochastic run, by (scenario, demand levers, service, its
        # own levers): as the scenario stands, kept for good; for other settings, the last few
        self._kept: OrderedDict[tuple[Any, ...], _Service] = OrderedDict()
        self._base_kept: dict[tuple[Any, ...], _Service] = {}
        self._bases: dict[tuple[Any, ...], _Flow] = {}  # each scenario as it stands, kept
        self._results: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._validated: set[str] = set()
        self._templates: dict[tuple[Any, ...], dict[str, Any]] = {}  # see _chart
        self._slow: set[str] = set()
        #: seconds ``__init__`` spent on the forecast and on the first scenario as it stands
        self.init_seconds = {"forecast": round(time.perf_counter() - t0, 3)}
        t1 = time.perf_counter()
        first = model.scenarios[0].name  # as it stands; this also loads the compiled engine
        self.evaluate(first, {})
        self.preview(first, {})
        self.init_seconds["scenarios"] = round(time.perf_counter() - t1, 3)

    # -- the interface ------------------------------------------------------------------------

    def levers(self) -> list[dict[str, Any]]:
        """The levers a page can move (JSON-able), in page order."""
        return [s.as_dict() for s in self._specs.values()]

    def evaluate(self, scenario: str | None, settings: Mapping[str, float]) -> dict[str, Any]:
        """The result for these settings on top of ``scenario`` (default the model's first);
        settings not given stay at their defaults (see :meth:`levers`).

        A JSON-able dict: ``headline``, plain-words lines as in the report (per service, the
        list or caseload at the end of the year shown and the staff and money to close the
        gap; then how far the money available goes, when set); ``summary``, a row per service
        for the year shown: ``referrals`` (in the year), ``waiting`` (at its end),
        ``mean_wait_weeks``, ``within_target_share``, ``fte`` (in post), ``fte_needed``,
        ``fte_shortfall``, ``cost_shortfall`` (£ a year), each ``{mean, p10, p90,
        deterministic, base}`` (``base``: the base scenario's mean); ``charts``, Vega-Lite
        specs with their data inline: ``demand`` (demand against capacity), ``waiting`` (the
        waiting list, beside the base scenario's when levers moved), ``shortfall`` (staff
        short by area); ``timing_ms`` (this call) and ``timings_ms`` (the computation's
        parts in ms, and ``engine.simulated_services``: how many services the engine ran),
        ``cached``; and ``model``, ``scenario``, ``label`` (its name in the charts),
        ``mode``, ``replicates``, ``seed``, ``settings`` (all of them), ``changes`` (the
        moved levers in plain words), ``year``. Raises ValueError naming every unknown or
        out-of-range setting, or an unknown scenario.
        """
        return self._result(scenario, settings, preview=False)

    def preview(self, scenario: str | None, settings: Mapping[str, float]) -> dict[str, Any]:
        """The fast path: as :meth:`evaluate`, from the deterministic run alone (``mode`` is
        "preview"; every p10 and p90 equals the central value, and the charts have no band).
        The page can show it at once and replace it with :meth:`evaluate`'s result."""
        return self._result(scenario, settings, preview=True)

    def scenario(self, scenario: str | None, settings: Mapping[str, float]) -> Scenario:
        """The base scenario with the settings' levers appended: run it with
        ``needsled.projection.run`` to get the same figures (e.g. to save it in a file)."""
        base = self._base(scenario)
        values = self._check(settings)
        extra = [lv for k, x in values.items() if (lv := self._specs[k].to_lever(x)) is not None]
        if not extra:
            return base
        moved = "; ".join(
            self._specs[k].describe(x) for k, x in values.items() if self._moved(k, x)
        )
        text = f"{base.description} With: {moved}." if base.description else f"With: {moved}."
        return Scenario(name=base.name, description=text, levers=(*base.levers, *extra))

    # -- checking -----------------------------------------------------------------------------

    def _base(self, scenario: str | None) -> Scenario:
        if scenario is None:
            return self.model.scenarios[0]
        try:
            return self.model.scenario(scenario)
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None

    def _moved(self, key: str, x: float) -> bool:
        spec = self._specs[key]
        return spec.lever is not None and x != spec.default

    def _engine(self, key: str, x: float) -> bool:
        return self._moved(key, x) and self._specs[key].lever in ENGINE_KINDS

    def _check(self, settings: Mapping[str, float]) -> dict[str, float]:
        """Every setting (defaults filled in) as a float; ValueError listing every problem."""
        problems = []
        values = {k: s.default for k, s in self._specs.items()}
        for key, raw in settings.items():
            spec = self._specs.get(key)
            if spec is None:
                problems.append(
                    f"{key!r} is not a lever of this model; the levers are: "
                    + ", ".join(self._specs)
                )
                continue
            try:
                x = float(raw)
            except (TypeError, ValueError):
                x = float("nan")
            whole = spec.unit in ("off/on", "year")
            if not (np.isfinite(x) and spec.min <= x <= spec.max) or (whole and x != round(x)):
                what = "a whole number from" if whole else "from"
                problems.append(
                    f"{spec.label} ({key}) must be {what} {spec.min:g} to {spec.max:g} "
                    f"{spec.unit}, not {raw!r}"
                )
                continue
            values[key] = x
        if problems:
            raise ValueError("The explorer cannot use these settings:\n- " + "\n- ".join(problems))
        return values

    # -- computing ----------------------------------------------------------------------------

    def _result(
        self, scenario: str | None, settings: Mapping[str, float], *, preview: bool
    ) -> dict[str, Any]:
        t0 = time.perf_counter()
        base = self._base(scenario)
        values = self._check(settings)
        key = (preview, base.name, tuple(values.items()))
        computed = False
        with self._cache_lock:
            found = self._results.get(key)
        if found is None:
            lane = "preview" if preview else "heavy" if self._heavy(base, values) else "full"
            task = _worker(lane).submit(self._compute_once, key, base, values, preview)
            found, computed = task.result()
        with self._cache_lock:
            self._results[key] = found
            self._results.move_to_end(key)
            while len(self._results) > RESULTS_KEPT:
                self._results.popitem(last=False)
        return {**found, "cached": not computed, "timing_ms": _ms(t0)}

    def heavy(self, scenario: str | None, settings: Mapping[str, float]) -> bool:
        """Whether :meth:`evaluate` would run the engine for more than one service for these
        settings now (a demand lever moved to a setting not worked out lately): about 1 s
        for the London example, where the others take 0.2 s or less. A web server can queue
        the two kinds apart (the explorer computes them on threads of their own)."""
        return self._heavy(self._base(scenario), self._check(settings))

    def _heavy(self, base: Scenario, values: dict[str, float]) -> bool:
        with self._cache_lock:
            if (False, base.name, tuple(values.items())) in self._results:
                return False
            flow = (base.name, self._levers_of(values, ENGINE_KINDS), False)
            if flow in self._bases or flow in self._flows:
                return False
            keys = self._part_keys(base.name, values)
            return sum(k not in self._base_kept and k not in self._kept for k in keys) > 1

    def _levers_of(
        self, values: Mapping[str, float], kinds: tuple[str, ...]
    ) -> tuple[tuple[str, float], ...]:
        """The settings of the levers of these kinds, in page order."""
        return tuple((k, x) for k, x in values.items() if self._specs[k].lever in kinds)

    def _part_keys(self, base: str, values: Mapping[str, float]) -> list[tuple[Any, ...]]:
        """The key of each service's part of a stochastic run: (scenario, demand levers,
        service, its own levers)."""
        demand = self._levers_of(values, DEMAND_KINDS)
        return [
            (base, demand, s, tuple(values.get(f"{kind}.{code}", 0.0) for kind in SERVICE_KINDS))
            for s, code in enumerate(self.model.services.codes)
        ]

    def _compute_once(
        self, key: tuple[Any, ...], base: Scenario, values: dict[str, float], preview: bool
    ) -> tuple[dict[str, Any], bool]:
        """On the mode's worker thread: the result, unless another request computed it while
        this one waited."""
        with self._cache_lock:
            found = self._results.get(key)
        if found is not None:
            return found, False
        return self._compute(base, values, preview), True

    def _flow(self, base: Scenario, values: dict[str, float], preview: bool) -> tuple[_Flow, bool]:
        """The engine's run for the levers that change it (the last few are kept), and
        whether it ran now."""
        engine = self._levers_of(values, ENGINE_KINDS)
        key = (base.name, engine, preview)
        at_base = all(x == self._specs[k].default for k, x in engine)
        with self._cache_lock:
            if key in self._bases:
                return self._bases[key], False
            if key in self._flows:
                self._flows.move_to_end(key)
                return self._flows[key], False
        sc = self.scenario(base.name, dict(engine))
        took: dict[str, float] = {}
        t0 = time.perf_counter()
        det = self._deterministic((base.name, engine), sc)
        took["deterministic"] = _ms(t0)
        if preview:
            t3 = time.perf_counter()
            flow = _reduce(det, det, self._years, self._year_labels, self.model)
        else:
            rng = np.random.default_rng([self.seed, 3, zlib.crc32(sc.name.encode())])
            sizes = lever_sizes(sc, self.replicates, rng)  # as projection.run draws them
            sim = self._sim(base.name, values, sc, sizes, took)
            t3 = time.perf_counter()
            cost = capacity(self.model, sc, self._draws, sizes, areas=NO_AREAS).cost_per_fte
            flow = _assemble(sim, cost, det, self._years, self._spans, self.model)
        took["reduce"] = _ms(t3)
        flow.timings = took
        with self._cache_lock:
            if at_base:
                self._bases[key] = flow
            else:
                self._flows[key] = flow
                while len(self._flows) > FLOWS_KEPT:
                    self._flows.popitem(last=False)
        return flow, True

    def _sim(
        self,
        base: str,
        values: dict[str, float],
        sc: Scenario,
        sizes: LeverSizes,
        took: dict[str, float],
    ) -> _Sim:
        """The stochastic engine run for these settings, service by service: each service
        whose part was kept for the same demand levers and the same levers of its own is
        reused, and the engine runs the others alone (each service of each chain has its own
        random stream, so they come out as in a run of every service). Two threads may run
        it at once (a quick and a heavy result): the kept parts are read and written under
        the lock, the engine runs outside it. The referrals the engine drew for each service
        are kept by the demand levers (:data:`DRAWN_KEPT_BYTES`): a lever on that service's
        staff or support length runs it on them without drawing them again."""
        demand = self._levers_of(values, DEMAND_KINDS)
        at_demand = all(x == self._specs[k].default for k, x in demand)
        keys = self._part_keys(base, values)
        found: list[_Service | None] = []
        with self._cache_lock:
            for key in keys:
                kept = self._base_kept.get(key)
                if kept is None and key in self._kept:
                    self._kept.move_to_end(key)
                    kept = self._kept[key]
                found.append(kept)
        missing = [s for s, kept in enumerate(found) if kept is None]
        took["simulated_services"] = len(missing)
        if missing:
            t1 = time.perf_counter()
            arrivals = self._arrivals((base, demand), sc, sizes, missing)
            took["demand"] = _ms(t1)
            with self._cache_lock:
                drawn = [self._drawn.get((base, demand, s)) for s in missing]
                for s in missing:
                    if (base, demand, s) in self._drawn:
                        self._drawn.move_to_end((base, demand, s))
            fresh, now = _simulate(
                self.model,
                sc,
                arrivals,
                self._draws,
                sizes,
                self.seed,
                missing,
                self._spans,
                took,
                drawn,
            )
            with self._cache_lock:
                for j, s in enumerate(missing):
                    if now is None:  # every service's were kept
                        break
                    one = now[:, j : j + 1].copy()
                    one.flags.writeable = False  # read by the runs that find it
                    self._drawn[(base, demand, s)] = one
                used = sum(x.nbytes for x in self._drawn.values())
                while len(self._drawn) > 1 and used > DRAWN_KEPT_BYTES:
                    used -= self._drawn.popitem(last=False)[1].nbytes
                for s, part in zip(missing, fresh, strict=True):
                    found[s] = part
                    key = keys[s]
                    if at_demand and not any(key[3]):  # as it stands: most moves start there
                        self._base_kept[key] = part
                    else:
                        self._kept[key] = part
                used = sum(part.nbytes for part in self._kept.values())
                while len(self._kept) > 1 and used > SERVICES_KEPT_BYTES:
                    used -= self._kept.popitem(last=False)[1].nbytes
        return _Sim(tuple(part for part in found if part is not None))

    def _arrivals(self, key: tuple[Any, ...], sc: Scenario, sizes: Any, services: list[int]) -> F64:
        """Expected referrals (R, A, S', T, 2) of ``services`` for the demand levers (the
        last four are kept; each service's columns are those of every service's)."""
        key = (*key, tuple(services))
        with self._cache_lock:
            if key in self._demand:
                self._demand.move_to_end(key)
                return self._demand[key]
        arrivals = referrals(self.model, self._paths, self._draws, sc, sizes, services=services)
        with self._cache_lock:
            self._demand[key] = arrivals
            while len(self._demand) > DEMANDS_KEPT:
                self._demand.popitem(last=False)
        return arrivals

    def _deterministic(self, key: tuple[Any, ...], sc: Scenario) -> dict[str, F32]:
        """The deterministic run (``projection.run_chunk``) with its all-areas totals, for
        the levers on the engine's inputs ``key`` (the last few are kept: a full result
        after the slider rests finds its preview's, read-only)."""
        with self._cache_lock:
            if key in self._dets:
                self._dets.move_to_end(key)
                return self._dets[key]
        sizes = lever_sizes(sc, 1, None)
        arrivals = referrals(self.model, self._crime_mean[None], self._point, sc, sizes)
        m = run_chunk(self.model, sc, arrivals, self._point, sizes, self.seed, stochastic=False)
        det = with_total({k: m[k] for k in KEPT}, self.model.staffing.served)
        for x in det.values():
            x.flags.writeable = False  # shared by the results that read it
        with self._cache_lock:
            self._dets[key] = det
            while len(self._dets) > DETS_KEPT:
                self._dets.popitem(last=False)
        return det

    def _compute(self, base: Scenario, values: dict[str, float], preview: bool) -> dict[str, Any]:
        t0 = time.perf_counter()
        times: dict[str, float] = {}
        model = self.model
        engine = [k for k, x in values.items() if self._engine(k, x)]
        label = f"{base.name} with your changes" if engine else base.name
        year = _fy(int(values["year"]))
        flow, fresh = self._flow(base, values, preview)
        defaults = {k: s.default for k, s in self._specs.items()}
        base_flow = self._flow(base, defaults, preview)[0] if engine else flow
        times["engine"] = _ms(t0)
        if fresh:  # the engine's parts, when it ran for this result
            times.update({f"engine.{k}": v for k, v in flow.timings.items()})
        t1 = time.perf_counter()
        monthly, yearly, cost = self._tables(flow, label)
        b_monthly, b_yearly, _ = self._tables(base_flow, base.name)
        times["tables"] = _ms(t1)
        t2 = time.perf_counter()
        lines = self._headline(monthly, yearly, label, year)
        if values["funding_envelope"] > 0:
            y_i = self._year_labels.index(year)
            lines.append(_envelope_line(cost[..., y_i], values["funding_envelope"], year))
        if preview:
            lines = [RANGE.sub("", s) for s in lines]
        times["headline"] = _ms(t2)
        t3 = time.perf_counter()
        chart_dicts = self._charts(flow, label, year, monthly, b_monthly if engine else None)
        times["charts"] = _ms(t3)
        return {
            "model": model.name,
            "scenario": base.name,
            "label": label,
            "mode": "preview" if preview else "full",
            "replicates": 1 if preview else self.replicates,
            "seed": self.seed,
            "settings": values,
            "changes": [self._specs[k].describe(x) for k, x in values.items() if self._moved(k, x)],
            "year": year,
            "headline": lines,
            "summary": _summary(yearly, b_yearly, year, model),
            "charts": chart_dicts,
            "timings_ms": times,
        }

    def _tables(self, flow: _Flow, label: str) -> tuple[_Table, _Table, F64]:
        """The flow's monthly and yearly all-areas rows under this label (built once)."""
        if label not in flow.tables:
            yearly, cost = _yearly_rows(flow, label, self._years, self.model)
            flow.tables[label] = (_monthly_rows(flow, label, self.model), yearly, cost)
        return flow.tables[label]

    def _charts(
        self,
        flow: _Flow,
        label: str,
        year: str,
        monthly: _Table,
        base_monthly: _Table | None,
    ) -> dict[str, dict[str, Any]]:
        """The three charts, from needsled.charts as the report draws them: demand against
        capacity, the waiting list (the base scenario beside this one when levers moved) and
        the staff shortfall by area in the year shown (see :meth:`_chart`)."""
        names, areas = self._services, self._areas
        codes = tuple(dict.fromkeys(monthly["service"].tolist()))
        frames = [monthly] if base_monthly is None else [base_monthly, monthly]
        scenarios = tuple(str(f["scenario"][0]) for f in frames if len(f))

        def area_rows() -> _Table:
            rows = _area_rows(flow, label, self._year_labels, self.model)
            return rows.rows(rows["year"] == year)

        def waiting() -> Any:
            both = pd.concat([f.frame() for f in frames]).reset_index(drop=True)
            return charts.waiting_list(both, names)

        return {
            "demand": self._chart(
                flow,
                ("demand", label),
                (label, codes),
                lambda: _fan_rows([monthly], ("referrals", "capacity"), names, label),
                lambda: charts.demand_capacity(monthly.frame(), label, names),
            ),
            "waiting": self._chart(
                flow,
                ("waiting", label),
                (scenarios, codes),
                lambda: _fan_rows(frames, ("waiting",), names),
                waiting,
            ),
            "shortfall": self._chart(
                flow,
                ("shortfall", label, year),
                (label, year, int(self.model.staffing.served.any(1).sum())),
                lambda: _shortfall_rows(area_rows(), areas, names),
                lambda: charts.shortfall_by_area(area_rows().frame(), label, year, areas, names),
            ),
        }

    def _chart(
        self,
        flow: _Flow,
        key: tuple[str, ...],
        shape: tuple[Any, ...],
        rows: Callable[[], list[dict[str, Any]]],
        build: Callable[[], Any],
    ) -> dict[str, Any]:
        """A chart's Vega-Lite spec (built once per flow and key).

        The spec ``needsled.charts`` gives (``build()``) is all the same for data of the same
        ``shape`` (the labels, years and panels it names) but for its rows: the first spec of
        each kind and shape is kept as a template, and later specs are the template with
        ``rows()`` as its data, as altair holds them (altair's own rows are slow to make:
        pandas, then a deep copy). Where the rows do not come out as altair's (checked on
        every new template), that kind of chart is always built by altair. Each kind is
        checked against the Vega-Lite schema the first time it is built. Every spec's dataset
        is named by :func:`_with_rows`, not as altair names it."""
        if key in flow.charts:
            return flow.charts[key]
        kind = key[0]
        template = self._templates.get((kind, shape))
        if template is not None and kind not in self._slow:
            spec = _with_rows(template, rows())
        else:
            check = kind not in self._validated
            spec = build().to_dict(validate=check)
            self._validated.add(kind)
            (made,) = spec["datasets"].values()
            if template is None and kind not in self._slow:
                ours = rows()
                if made == ours:  # then named from our rows, as every later one of its kind
                    self._templates[(kind, shape)] = spec
                    made = ours
                else:
                    self._slow.add(kind)
            spec = _with_rows(spec, made)
        flow.charts[key] = spec
        return spec

    def _headline(self, monthly: _Table, yearly: _Table, label: str, year: str) -> list[str]:
        """``needsled.report.headline`` for one year, from the tables cut to that year."""
        month = monthly["month"]
        in_year = np.isin(month, self._year_months[year])
        last = max(month[in_year].tolist())
        sel = in_year & (monthly["scenario"] == label) & (month == last)
        ysel = (yearly["scenario"] == label) & (yearly["area"] == ALL_AREAS)
        ysel &= yearly["year"] == year
        services = list(dict.fromkeys(monthly["service"][sel].tolist()))
        return report.headline_lines(
            report.figures(monthly.cols, sel),
            report.figures(yearly.cols, ysel),
            services,
            last,
            year,
            self._services,
        )


# -- tables, built the way needsled.results builds them -------------------------------------


def _sr(metrics: dict[str, Any], det: dict[str, Any]) -> ScenarioResult:
    """A ScenarioResult holding only what ``results._yearly`` reads."""
    empty = np.empty(0)
    return ScenarioResult(Scenario(name="explorer"), metrics, det, empty, empty, empty, empty)


def _yearly_quiet(
    stoch: dict[str, Any],
    det: dict[str, Any],
    metric: str,
    years: Any,
    empty: NDArray[np.bool_],
    *,
    stochastic: bool = True,
    single: bool = False,
) -> F64:
    """``results.yearly`` (1 + R, A', S, Y) without its "Mean of empty slice" warning for
    the cells that are empty because the service is not there (``empty``, (A', S)): they go
    in as 0 and come out NaN, as ``yearly`` gives them; every other cell is computed as
    ``yearly`` computes it (cell by cell). ``stochastic=False``: the deterministic run's
    alone (1, A', S, Y). ``single``: the one replicate is the deterministic run (a preview),
    so its figures are worked out once and stand for both (2, A', S, Y): the same values,
    summed the same way, are what ``yearly`` gives for each."""
    both = stochastic and not single  # work out the replicates' figures apart
    cells = empty[None, :, :, None]
    if empty.any():
        if both:
            stoch = {**stoch, metric: np.where(cells, 0, stoch[metric])}
        det = {**det, metric: np.where(cells[0], 0, det[metric])}
    x = yearly(_sr(stoch, det), metric, years, stochastic=both)[0]
    if single:
        x = np.concatenate([x, x])
    return np.where(cells, np.nan, x) if empty.any() else x


@dataclass(frozen=True)
class _Service:
    """One service's part of a stochastic engine run, reduced to what the page shows.

    ``totals``: metric -> (R, T) all areas together (``projection.with_total``), every
    metric of :data:`TOTALS`; ``short``: the FTE shortfall (R, A, T) in float64, from which
    each cost per FTE's cost of the shortfall is worked out; ``area_mean`` and ``area_last``:
    each area's FTE shortfall by year (R, A, Y), the mean over the year's months and the last
    month's (``results.yearly`` takes one or the other, by whether the year has a finite
    value anywhere: ``area_finite`` (Y,)); ``flags``: metric -> (4, Y), see :func:`_flags`;
    ``idle``: whether some chain started nobody in some year; ``costs``: the cost of the
    shortfall, all areas together, at the last few costs per FTE (:func:`_service_cost`)."""

    totals: dict[str, F32]
    short: F64
    area_mean: F64
    area_last: F64
    area_finite: NDArray[np.bool_]
    flags: dict[str, NDArray[np.bool_]]
    idle: bool
    # the cost of the shortfall at the last few costs per FTE: see _service_cost
    costs: dict[bytes, tuple[F32, NDArray[np.bool_]]] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        arrays: list[NDArray[Any]] = [*self.totals.values(), self.short]
        arrays += [self.area_mean, self.area_last]
        arrays += [a for pair in list(self.costs.values()) for a in pair]
        return sum(int(a.nbytes) for a in arrays)


@dataclass(frozen=True)
class _Sim:
    """A stochastic engine run for one setting of the levers on the engine's inputs (all but
    the cost of an FTE), service by service."""

    services: tuple[_Service, ...]


def _spans(years: NDArray[np.str_], labels: list[str]) -> list[slice]:
    """The months of each April-to-March year, as slices (a year's months are consecutive)."""
    out = []
    for y in labels:
        span = as_slice(np.flatnonzero(years == y))
        if not isinstance(span, slice):
            raise ValueError(f"the months of {y} are not consecutive")
        out.append(span)
    return out


def _simulate(
    model: Model,
    sc: Scenario,
    arrivals: F64,
    draws: Draws,
    sizes: LeverSizes,
    seed: int,
    services: list[int],
    spans: list[slice],
    took: dict[str, float],
    drawn: list[F32 | None],
) -> tuple[tuple[_Service, ...], F32 | None]:
    """The engine for ``services`` (indices, in order) in every area, reduced service by
    service; any subset gives each service's figures of a run of every service.
    ``arrivals``: those services' expected referrals alone (``referrals(..., services=)``).
    ``drawn``: each service's referrals as ``flow.draw_arrivals`` drew them for these
    expected referrals (C, 1, T, 2), or None; unless every one is given, they are drawn for
    every service, and returned (C, S', T, 2) with the parts (None when they were given).

    Every figure is computed as ``projection.run`` computes it, on the same values: the
    metrics as ``run_chunk`` gives them, the all-areas totals as ``with_total`` gives them.
    ``took``: milliseconds for the engine's inputs, the engine and the reduction."""
    t0 = time.perf_counter()
    si = np.asarray(services, dtype=np.int64)
    inputs, chunk = chunk_inputs(
        model, sc, arrivals, draws, sizes, seed, services=services, arrivals_of_services=True
    )
    took["inputs"] = _ms(t0)
    t1 = time.perf_counter()
    now = None
    if all(x is not None for x in drawn):
        given = np.concatenate([x for x in drawn if x is not None], axis=1)
    else:
        given = now = draw_arrivals(inputs)
    took["drew_referrals"] = 0 if now is None else len(si)
    out = simulate(inputs, stochastic=True, arrivals_drawn=given)
    took["simulation"] = _ms(t1)
    t2 = time.perf_counter()
    # service by service: the same figures, from arrays a sixth the size (less memory to take
    # from the system and give back, each time)
    served = model.staffing.served[:, si]
    kept = []
    for j in range(len(si)):
        one = slice(j, j + 1)
        part = FlowOutputs(**{f.name: getattr(out, f.name)[:, one] for f in fields(out)})
        cut = dataclasses.replace(
            chunk,
            services=chunk.services[one],
            fte=chunk.fte[:, :, one],
            slots=chunk.slots[:, :, one],
            duration_weeks=chunk.duration_weeks[:, one],
            cost_per_fte=chunk.cost_per_fte[:, one],
            demand_week=chunk.demand_week[:, :, one],
        )
        kept.append(_reduce_service(part, cut, model, served[:, one], spans))
    took["metrics"] = _ms(t2)
    return tuple(kept), now


def _reduce_service(
    out: FlowOutputs, chunk: Chunk, model: Model, served: NDArray[np.bool_], spans: list[slice]
) -> _Service:
    """One service's engine outputs (a chunk of every area) reduced to a :class:`_Service`."""
    m = chunk_metrics(out, chunk, model, wanted=SIMULATED)
    needed = fte_needed(m, chunk, model)
    short = fte_shortfall(needed, chunk)
    m["fte_needed"] = needed.astype(np.float32)
    m["fte_shortfall"] = short.astype(np.float32)
    absent = ~served
    totals = with_total(m, served, totals_only=True)  # (R, 1, 1, T)
    flags = {k: _flags(m[k], totals[k], absent, spans)[0] for k in FLAGGED if k in m}
    idle = bool(absent.any())
    for sp in spans:
        for x in (m["starts"], totals["starts"]):
            idle = idle or bool((~(x[..., sp].sum(-1, dtype=np.float64) > 0)).any())
    area_mean, area_last, area_finite = _area_yearly(m["fte_shortfall"], absent, spans)
    return _Service(
        totals={k: np.ascontiguousarray(totals[k][:, 0, 0]) for k in TOTALS},
        short=np.ascontiguousarray(short[:, :, 0]),
        area_mean=np.ascontiguousarray(area_mean[:, :, 0]),
        area_last=np.ascontiguousarray(area_last[:, :, 0]),
        area_finite=area_finite[0],
        flags=flags,
        idle=idle,
    )


def _flags(x: F32, total: F32, absent: NDArray[np.bool_], spans: list[slice]) -> NDArray[np.bool_]:
    """Where ``with_total``'s (R, A + 1, S, T) array of the per-area values ``x`` (NaN where a
    service is absent, ``absent`` (A, S)) and their totals (R, 1, S, T) holds NaN, by service
    and year (S, 4, Y): any NaN; NaN in the year's last month; a finite value; some cell NaN in
    every month of the year (what :func:`_yearly_has_nan` reads, service by service). Where a
    service is absent from an area, the last three do not matter (the area's cells are NaN in
    every month, which makes the yearly figure NaN either way), nor does "finite" where no
    NaN is held (then no year has NaN whichever way it is summarised)."""
    n_s, n_y = x.shape[2], len(spans)
    out = np.zeros((n_s, 4, n_y), dtype=bool)
    nan_x, nan_t = np.isnan(x), np.isnan(total)
    if not (nan_x.any() or nan_t.any() or absent.any()):
        for y, sp in enumerate(spans):  # a finite value: nearly always the first one
            first = np.isfinite(x[0, 0, :, sp.start])
            for j in np.flatnonzero(~first):
                first[j] = (
                    np.isfinite(x[:, :, j, sp]).any() or np.isfinite(total[:, :, j, sp]).any()
                )
            out[:, 2, y] = first
        return out
    nan = np.concatenate([nan_x | absent[None, :, :, None], nan_t], axis=1)
    finite = np.concatenate(
        [np.isfinite(x) & ~absent[None, :, :, None], ~nan_t & np.isfinite(total)], axis=1
    )
    for y, sp in enumerate(spans):
        part = nan[..., sp]
        out[:, 0, y] = part.any(axis=(0, 1, 3))
        out[:, 1, y] = np.any(part[..., -1], axis=(0, 1))
        out[:, 2, y] = finite[..., sp].any(axis=(0, 1, 3))
        out[:, 3, y] = np.any(part.all(-1), axis=(0, 1))
    return out


def _combined(flags: list[NDArray[np.bool_]], metric: str, idle: bool) -> tuple[bool, bool]:
    """Whether the whole (R, A + 1, S, T) array of ``metric`` holds NaN, and whether
    ``results.yearly`` of it does (as :func:`_yearly_has_nan`), from each service's flags."""
    f = np.stack(flags)  # (S, 4, Y)
    nan, last, finite, all_year = (f[:, i].any(0) for i in range(4))
    monthly = bool(nan.any())
    if metric in WEIGHTED:
        return monthly, idle
    if metric in FLOWS:
        return monthly, monthly
    if metric in STOCKS:
        return monthly, bool(last.any())
    return monthly, bool(np.where(finite, all_year, last).any())


def _area_yearly(
    x: F32, absent: NDArray[np.bool_], spans: list[slice]
) -> tuple[F64, F64, NDArray[np.bool_]]:
    """Each area's yearly figure (R, A, S, Y) of an averaged metric (FTE), both ways
    ``results.yearly`` may take it (the mean of the year's months, or the last month's), NaN
    where the service is absent; and whether each service has a finite value in each year
    (S, Y) with absent cells as 0 (as :func:`_yearly_quiet` puts them in)."""
    cells = absent[None, :, :, None]
    x = np.where(cells, 0, x)
    shape = (*x.shape[:3], len(spans))
    mean, last = np.empty(shape), np.empty(shape)
    finite = np.zeros((x.shape[2], len(spans)), dtype=bool)
    for y, sp in enumerate(spans):
        part = x[..., sp].astype(np.float64)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean[..., y] = np.nanmean(part, -1)
        last[..., y] = part[..., -1]
        finite[:, y] = np.isfinite(part).any(axis=(0, 1, 3))
    cells = cells[..., :1]
    return np.where(cells, np.nan, mean), np.where(cells, np.nan, last), finite


COSTS_KEPT = 4  # costs per FTE whose cost of the shortfall each service's part keeps


def _service_cost(
    part: _Service,
    s: int,
    cost_per_fte: F64,
    served: NDArray[np.bool_],
    spans: list[slice],
) -> tuple[F32, NDArray[np.bool_]]:
    """Service ``s``'s cost of the shortfall, all areas together (R, T), and its
    :func:`_flags` (4, Y), at a cost per FTE (R, S, T): as ``projection.cost_shortfall`` and
    ``with_total`` give its column of every service's (each cell is worked out from that
    service's cells alone). Kept in the part by the bytes of its cost per FTE, so a lever on
    another service, or the money available, does not work it out again."""
    per_fte = np.ascontiguousarray(cost_per_fte[:, s : s + 1])  # (R, 1, T)
    key = hashlib.blake2b(per_fte.tobytes(), digest_size=16).digest()
    found = part.costs.get(key)
    if found is None:
        mine = served[:, s : s + 1]
        cost = shortfall_cost(part.short[:, :, None], per_fte)  # (R, A, 1, T)
        total = with_total({"cost_shortfall": cost}, mine, totals_only=True)["cost_shortfall"]
        found = (np.ascontiguousarray(total[:, 0, 0]), _flags(cost, total, ~mine, spans)[0])
        part.costs[key] = found
        for old in list(part.costs)[:-COSTS_KEPT]:  # a copy: another lane may add one
            part.costs.pop(old, None)
    return found


def _assemble(
    sim: _Sim,
    cost_per_fte: F64,
    det: dict[str, F32],
    years: NDArray[np.str_],
    spans: list[slice],
    model: Model,
) -> _Flow:
    """A stochastic run at one cost per FTE (R, S, T) and the deterministic run (1, A + 1, S,
    T) reduced to what the page shows (as :func:`_reduce` reduces the whole arrays)."""
    svcs = sim.services
    served = model.staffing.served
    stoch = {k: np.stack([sv.totals[k] for sv in svcs], axis=1)[:, None] for k in TOTALS}
    costs = [_service_cost(sv, s, cost_per_fte, served, spans) for s, sv in enumerate(svcs)]
    stoch["cost_shortfall"] = np.stack([total for total, _ in costs], axis=1)[:, None]
    flags = {k: [sv.flags[k] for sv in svcs] for k in FLAGGED if k != "cost_shortfall"}
    flags["cost_shortfall"] = [f for _, f in costs]
    idle = any(sv.idle for sv in svcs)
    nans = {k: _combined(v, k, idle) for k, v in flags.items()}
    # each area's FTE shortfall by year, and all areas', as summary_table has them
    served_any = _served_any(model)
    total_x = np.where(~served_any[None, None, :, None], 0, stoch["fte_shortfall"])
    t_mean, t_last, t_finite = _area_yearly(total_x, np.zeros((1, len(svcs)), bool), spans)
    finite = np.stack([sv.area_finite for sv in svcs]).any(0) | t_finite.any(0)  # (Y,)
    area = np.where(
        finite,
        np.stack([sv.area_mean for sv in svcs], 2),
        np.stack([sv.area_last for sv in svcs], 2),
    )
    total = np.where(finite, t_mean, t_last)
    total = np.where(~served_any[None, None, :, None], np.nan, total)
    means = summarise(np.concatenate([area, total], axis=1))[0]  # (A + 1, S, Y)
    short_det = {"fte_shortfall": det["fte_shortfall"]}
    empty = ~np.vstack([served, served_any[None]])
    x_det = _yearly_quiet(
        short_det,
        {k: v[0] for k, v in short_det.items()},
        "fte_shortfall",
        years,
        empty,
        stochastic=False,
    )
    return _Flow(
        stoch=stoch,
        det={k: v[:, -1:].astype(np.float64) for k, v in det.items()},
        area_shortfall=np.stack([x_det[0, :-1], means[:-1]]),
        monthly_nan={k: nans[k][0] for k in MONTHLY},
        yearly_nan={k: nans[k][1] if k in nans else idle for k in YEARLY},
    )


def _reduce(
    stoch: dict[str, F32], det: dict[str, F32], years: Any, labels: list[str], model: Model
) -> _Flow:
    """All-areas slices, per-area FTE shortfall by year, and where NaN would appear. When
    ``stoch`` is ``det`` (a preview), each yearly figure is worked out once."""
    single = stoch is det
    served = model.staffing.served
    empty = ~np.vstack([served, _served_any(model)[None]])  # (A + 1, S)
    short = {"fte_shortfall": stoch["fte_shortfall"]}
    x = _yearly_quiet(
        short,
        {"fte_shortfall": det["fte_shortfall"][0]},
        "fte_shortfall",
        years,
        empty,
        single=single,
    )
    means = summarise(x[1:])[0]  # (A + 1, S, Y), as summary_table has it
    starts = stoch["starts"]
    idle = any(
        bool((~(starts[..., years == y].sum(-1, dtype=np.float64) > 0)).any()) for y in labels
    )
    return _Flow(
        stoch={k: v[:, -1:].copy() for k, v in stoch.items()},  # not a view of the whole
        det={k: v[:, -1:].astype(np.float64) for k, v in det.items()},
        area_shortfall=np.stack([x[0, :-1], means[:-1]]),
        monthly_nan={k: bool(np.isnan(stoch[k]).any()) for k in MONTHLY},
        yearly_nan={k: _yearly_has_nan(stoch[k], idle, k, years, labels) for k in YEARLY},
        single=single,
    )


def _yearly_has_nan(x: F32, idle: bool, metric: str, years: Any, labels: list[str]) -> bool:
    """Whether ``results._yearly`` gives NaN anywhere for these (R, A + 1, S, T) values, read
    off the months without building its whole (R, A + 1, S, Y) array. ``idle``: whether some
    chain started nobody in some year (starts-weighted figures are NaN there)."""
    if metric in WEIGHTED:
        return idle
    nan = np.isnan(x)
    if not nan.any():
        return False
    for y in labels:
        sel = years == y
        if metric in FLOWS:
            bad = nan[..., sel].any()
        elif metric in STOCKS:
            bad = nan[..., sel][..., -1].any()
        elif np.isfinite(x[..., sel]).any():  # nanmean over the year's months
            bad = nan[..., sel].all(-1).any()
        else:
            bad = nan[..., sel][..., -1].any()
        if bad:
            return True
    return False


def _summarise_as(part: NDArray[Any], full_has_nan: bool) -> F64:
    """``summarise(part)`` as it comes out when ``part`` is summarised inside a larger array:
    NumPy's percentiles without NaN, the NaN-aware kernel with (they differ in the last bits,
    which can move a rounded figure)."""
    if full_has_nan:
        flat = np.ascontiguousarray(part.reshape(part.shape[0], -1), dtype=np.float32)
        pad = np.full((flat.shape[0], 1), np.nan, dtype=np.float32)
        return summarise(np.concatenate([flat, pad], axis=1))[:, :-1].reshape(4, *part.shape[1:])
    return summarise(part)


FIGURES = ("mean", "p10", "p50", "p90")


class _Table:
    """Rows as ``needsled.results`` writes them, held column by column (NumPy arrays of one
    length, text as ``str`` arrays): what the headline, the summary and the charts read,
    without building a DataFrame each time (a few milliseconds each with text columns);
    :meth:`frame` gives the DataFrame, for altair's first chart of a kind."""

    __slots__ = ("cols", "fan")

    def __init__(self, cols: dict[str, NDArray[Any]]) -> None:
        self.cols = cols
        self.fan: dict[tuple[Any, ...], list[dict[str, Any]]] = {}  # see _fan_rows

    def __getitem__(self, key: str) -> NDArray[Any]:
        return self.cols[key]

    def __len__(self) -> int:
        return len(next(iter(self.cols.values()))) if self.cols else 0

    def rows(self, sel: NDArray[np.bool_]) -> _Table:
        """The rows where ``sel`` holds."""
        return _Table({k: v[sel] for k, v in self.cols.items()})

    def columns(self, names: tuple[str, ...]) -> _Table:
        return _Table({k: self.cols[k] for k in names})

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.cols)


def _frame(label: str, blocks: list[tuple[str, F64, NDArray[Any]]], at: Any, **cols: Any) -> _Table:
    """Rows as ``needsled.results`` writes them, one block of rows per (metric, stats,
    deterministic run): mean, p10, p50, p90 and the deterministic run's value of the cells
    ``at`` (index arrays), each rounded to its metric's precision (``results.rounded``);
    ``cols``: the cells' other columns (arrays of one block's length, or one value)."""
    n = len(at[0])
    figures: dict[str, list[F64]] = {k: [] for k in (*FIGURES, "deterministic")}
    for metric, stats, det in blocks:
        for i, k in enumerate(FIGURES):
            figures[k].append(rounded_values(stats[i][at], metric))
        figures["deterministic"].append(rounded_values(det[at], metric))
    size = n * len(blocks)
    where = {
        k: np.full(size, v) if np.isscalar(v) else np.tile(np.asarray(v), len(blocks))
        for k, v in cols.items()
    }
    metric_col = np.repeat(np.asarray([b[0] for b in blocks]), n)
    return _Table(
        {
            "scenario": np.full(size, label),
            **where,
            "metric": metric_col,
            **{k: np.concatenate(v) for k, v in figures.items()},
        }
    )


def _monthly_rows(flow: _Flow, label: str, model: Model) -> _Table:
    """``results_table``'s all-areas rows of the metrics the charts and the headline use."""
    shape = flow.det["waiting"].shape[2:]  # (S, T)
    at = np.nonzero(np.broadcast_to(_served_any(model)[:, None], shape))
    where = {
        "area": ALL_AREAS,
        "service": np.asarray(model.services.codes)[at[0]],
        "month": np.asarray(model.months)[at[1]],
    }
    blocks = [
        (
            metric,
            _summarise_as(flow.stoch[metric][:, 0], flow.monthly_nan[metric]),
            flow.det[metric][0, 0],
        )
        for metric in MONTHLY
    ]
    table = _frame(label, blocks, at, **where)
    table.cols["area_name"] = np.full(len(table), "All areas")
    return table


def _yearly_rows(flow: _Flow, label: str, years: Any, model: Model) -> tuple[_Table, F64]:
    """``summary_table``'s all-areas rows, every year; and the cost of the shortfall by
    replicate, service and year (R, S, Y) for the funding envelope."""
    labels = np.asarray(list(dict.fromkeys(years.tolist())))
    det = {k: v[0] for k, v in flow.det.items()}
    served = _served_any(model)
    at = np.nonzero(np.broadcast_to(served[:, None], (len(served), len(labels))))
    where = {
        "year": labels[at[1]],
        "service": np.asarray(model.services.codes)[at[0]],
        "area": ALL_AREAS,
    }
    blocks, cost = [], np.empty(0)
    for metric in YEARLY:
        # (1 + R, 1, S, Y)
        x = _yearly_quiet(flow.stoch, det, metric, years, ~served[None], single=flow.single)
        blocks.append((metric, _summarise_as(x[1:, 0], flow.yearly_nan[metric]), x[0, 0]))
        if metric == "cost_shortfall":
            cost = x[1:, 0]
    return _frame(label, blocks, at, **where), cost


def _area_rows(flow: _Flow, label: str, labels: list[str], model: Model) -> _Table:
    """``summary_table``'s per-area FTE shortfall rows (what ``shortfall_by_area`` draws:
    the mean over replicates; the other statistics are not kept)."""
    shape = flow.area_shortfall.shape[1:]  # (A, S, Y)
    at = np.nonzero(np.broadcast_to(model.staffing.served[..., None], shape))
    where = {
        "year": np.asarray(labels)[at[2]],
        "service": np.asarray(model.services.codes)[at[1]],
        "area": np.asarray(model.area_codes)[at[0]],
    }
    mean = np.broadcast_to(flow.area_shortfall[1], (4, *shape))
    frame = _frame(label, [("fte_shortfall", mean, flow.area_shortfall[0])], at, **where)
    return frame.columns(("scenario", "year", "service", "area", "metric", "mean", "deterministic"))


# -- charts: the rows needsled.charts puts in them ------------------------------------------


def _fan_rows(
    tables: list[_Table],
    metrics: tuple[str, ...],
    names: Mapping[str, str],
    scenario: str | None = None,
) -> list[dict[str, Any]]:
    """The rows of a fan chart (``charts.demand_capacity`` with ``scenario``, else
    ``charts.waiting_list``) drawn from these all-areas monthly tables, as altair holds them:
    the tables' rows of ``metrics`` in order, numbers as floats (None if not finite). Each
    table keeps its rows (the base scenario's table serves every result beside it); they are
    shared, and read only."""
    out: list[dict[str, Any]] = []
    for table in tables:
        key = (metrics, scenario)
        rows = table.fan.get(key)
        if rows is None:
            rows = table.fan[key] = _table_fan_rows(table, metrics, names, scenario)
        out += rows
    return out


def _table_fan_rows(
    table: _Table, metrics: tuple[str, ...], names: Mapping[str, str], scenario: str | None
) -> list[dict[str, Any]]:
    sel = np.isin(table["metric"], metrics)
    if scenario is not None:
        sel &= table["scenario"] == scenario
    text = [table[k][sel].tolist() for k in ("scenario", "service", "month", "metric")]
    figures = [_floats(table[k][sel].astype(np.float64)) for k in ("mean", "p10", "p90")]
    panels = charts.wrapped(names, list(dict.fromkeys(text[1])))
    if scenario is None:
        return [
            {
                "scenario": sc,
                "service": svc,
                "month": month,
                "metric": metric,
                "mean": mean,
                "p10": p10,
                "p90": p90,
                "date": month + "-01",
                "panel": panels[svc],
            }
            for sc, svc, month, metric, mean, p10, p90 in zip(*text, *figures, strict=True)
        ]
    series = {"referrals": "Referrals (demand)", "capacity": "Capacity (starts staff can take on)"}
    return [
        {
            "scenario": sc,
            "service": svc,
            "month": month,
            "metric": metric,
            "mean": mean,
            "p10": p10,
            "p90": p90,
            "date": month + "-01",
            "series": series.get(metric),
            "panel": panels[svc],
        }
        for sc, svc, month, metric, mean, p10, p90 in zip(*text, *figures, strict=True)
    ]


def _shortfall_rows(
    rows: _Table, areas: Mapping[str, str], names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The rows of ``charts.shortfall_by_area`` drawn from one year's per-area rows."""
    sel = rows["area"] != ALL_AREAS
    codes = rows["area"][sel].tolist()
    services = rows["service"][sel].tolist()
    means = _floats(rows["mean"][sel].astype(np.float64))
    return [
        {
            "area": a,
            "service": s,
            "mean": m,
            "area_name": areas.get(a),
            "service_name": names.get(s, s),
        }
        for a, s, m in zip(codes, services, means, strict=True)
    ]


def _floats(x: F64) -> list[float | None]:
    """Numbers as altair puts them in a chart: floats, None where not finite."""
    return [v if math.isfinite(v) else None for v in x.tolist()]


def _with_rows(spec: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A chart spec holding one named dataset, with ``rows`` in its place, named by a hash
    of its rows; the rest of the spec is shared, not copied. Altair names a dataset by a
    hash of its rows' JSON, which takes some 5 ms to write for a fan chart's rows; this hash
    of their ``marshal`` bytes takes a tenth of that, and serves the same purpose: one name
    for the same rows, another for others (within one Python version)."""
    (old,) = spec["datasets"]
    if rows == [{}]:
        new = "empty"
    else:
        new = "data-" + hashlib.sha256(marshal.dumps(rows)).hexdigest()[:32]
    out = _renamed({k: v for k, v in spec.items() if k != "datasets"}, old, new)
    return {**out, "datasets": {new: rows}}


def _renamed(obj: Any, old: str, new: str) -> Any:
    """``obj`` with every reference ``{"name": old}`` to a dataset made ``{"name": new}``;
    parts without one are the same objects."""
    if isinstance(obj, dict):
        if obj.get("name") == old:
            return {**obj, "name": new}
        out = {k: _renamed(v, old, new) for k, v in obj.items()}
        return obj if all(out[k] is obj[k] for k in obj) else out
    if isinstance(obj, list):
        items = [_renamed(v, old, new) for v in obj]
        return obj if all(a is b for a, b in zip(items, obj, strict=True)) else items
    return obj


def _summary(yearly: _Table, base: _Table, year: str, model: Model) -> list[Any]:
    """A row per service for one year: each figure's mean, p10, p90, deterministic, and the
    base scenario's mean."""
    cols = ("mean", "p10", "p90", "deterministic")

    def by_cell(table: _Table, names: tuple[str, ...]) -> dict[tuple[str, str], tuple[Any, ...]]:
        sel = table["year"] == year
        keys = zip(table["service"][sel].tolist(), table["metric"][sel].tolist(), strict=True)
        values = zip(*(table[k][sel].tolist() for k in names), strict=True)
        return dict(zip(keys, values, strict=True))

    figures, before = by_cell(yearly, cols), by_cell(base, ("mean",))
    sv, rows = model.services, []
    for s in np.flatnonzero(_served_any(model)):
        code = sv.codes[s]
        row: dict[str, Any] = {
            "service": code,
            "service_name": sv.names[s],
            "stretch": bool(sv.stretch[s]),
        }
        for metric in YEARLY:
            row[metric] = {k: _num(v) for k, v in zip(cols, figures[(code, metric)], strict=True)}
            row[metric]["base"] = _num(before[(code, metric)][0])
        rows.append(row)
    return rows


def _envelope_line(cost: F64, envelope: float, year: str) -> str:
    """How far the money available goes against the cost of every service's shortfall.

    ``cost`` is (R, S): each replicate's cost of the shortfall in the year, by service."""
    totals = np.nansum(cost, axis=-1)
    mean = float(totals.mean())
    if mean <= 0:
        return f"No service is short of staff in {year}: the {_money(envelope)} is not needed."
    share = float((totals <= envelope).mean())
    if len(totals) == 1:
        verdict = "covers" if share == 1 else "does not cover"
        return (
            f"The {_money(envelope)} available {verdict} the {_money(mean)} a year that "
            f"closing every service's gap costs in {year}."
        )
    return (
        f"The {_money(envelope)} available covers the cost of closing every service's gap "
        f"in {year} ({_money(mean)} a year on average) in {share:.0%} of the simulated "
        f"futures."
    )


def _money(x: float) -> str:
    return f"£{x / 1e6:,.1f}m" if abs(x) >= 1e6 else f"£{x / 1e3:,.0f}k"


def _served_any(model: Model) -> NDArray[np.bool_]:
    """Services served in at least one area (those with an all-areas row)."""
    return np.asarray(model.staffing.served.any(axis=0), dtype=bool)


def _fy(start: int) -> str:
    return f"{start}/{(start + 1) % 100:02d}"


def _num(x: Any) -> float | None:
    v = float(x)
    return v if np.isfinite(v) else None


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 1)
