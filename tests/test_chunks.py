"""The engine's chunks: any subset of services runs on its own exactly as in a run of every
service (each service of each chain has its own random stream, keyed by the service's code),
in any order and in a model without the other services; a lever on one service leaves the
others' numbers as they were; ``with_total``'s all-areas row alone; metrics left out on
request are the only difference.

On the London example (32 areas, 6 services), a few replicates: the checks are equalities,
so they do not depend on the number.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from needsled.demand import Draws, LeverSizes, draw_parameters, lever_sizes, referrals
from needsled.example import write_example
from needsled.flow import FlowInputs, simulate
from needsled.io.load import load_model
from needsled.model import Model, Services, Staffing, Uncertain
from needsled.projection import (
    METRICS,
    SUMMED,
    chain_seeds,
    chunk_inputs,
    chunk_metrics,
    crime_point_forecast,
    run,
    run_chunk,
    service_key,
    with_total,
)
from needsled.scenarios import Lever, Scenario

R, SEED = 6, 11


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    return load_model(write_example(tmp_path_factory.mktemp("london")))


@dataclass(frozen=True)
class Case:
    sc: Scenario
    arrivals: np.ndarray
    draws: Draws
    sizes: LeverSizes


@pytest.fixture(scope="module")
def case(model: Model) -> Case:
    """A scenario with levers, its arrivals (R, A, S, T, 2), draws and lever sizes."""
    sc = model.scenarios[-1]
    assert sc.levers
    draws = draw_parameters(model, R, np.random.default_rng([SEED, 2]))
    sizes = lever_sizes(sc, R, np.random.default_rng([SEED, 3]))
    point = crime_point_forecast(model, SEED)
    crime = (
        np.broadcast_to(point[None], (R, *point.shape))
        * np.linspace(0.8, 1.2, R)[:, None, None, None]
    )
    return Case(sc, referrals(model, crime, draws, sc, sizes), draws, sizes)


def _all_services(
    model: Model, case: Case, areas: list[int] | None
) -> tuple[FlowInputs, dict[str, np.ndarray]]:
    flow_in, chunk = chunk_inputs(
        model, case.sc, case.arrivals, case.draws, case.sizes, SEED, areas=areas
    )
    out = simulate(flow_in, stochastic=True)
    return flow_in, chunk_metrics(out, chunk, model)


@pytest.mark.parametrize("areas", [None, [3, 7, 8, 20]])
def test_any_services_alone_are_the_whole_runs(
    model: Model, case: Case, areas: list[int] | None
) -> None:
    """The first, the last, a middle one, several out of order: each service's numbers are
    those of a run of every service."""
    whole_in, whole = _all_services(model, case, areas)
    n_s = len(model.services)
    for some in ([0], [n_s - 1], [3], [1, 4], [5, 2, 0], list(range(2, n_s))):
        part_in, chunk = chunk_inputs(
            model,
            case.sc,
            case.arrivals,
            case.draws,
            case.sizes,
            SEED,
            areas=areas,
            services=some,
        )
        assert list(chunk.services) == some
        np.testing.assert_array_equal(part_in.seeds, whole_in.seeds[:, some])
        part = chunk_metrics(simulate(part_in, stochastic=True), chunk, model)
        assert set(part) == set(whole) == set(METRICS)
        for key, value in whole.items():
            np.testing.assert_array_equal(part[key], value[:, :, some], err_msg=(key, some))


def test_each_service_of_each_chain_has_its_own_seed(model: Model, case: Case) -> None:
    """(R x A, S) seeds, all different, keyed by the service's code and not its position;
    a chunk of areas has the whole run's seeds for its chains."""
    flow_in, _ = chunk_inputs(model, case.sc, case.arrivals, case.draws, case.sizes, SEED)
    n_a, n_s = len(model.area_codes), len(model.services)
    seeds = flow_in.seeds
    assert seeds.shape == (R * n_a, n_s)
    assert seeds.dtype == np.uint64
    assert len(np.unique(seeds)) == seeds.size
    codes = list(model.services.codes)
    np.testing.assert_array_equal(seeds, chain_seeds(SEED, np.arange(n_a), R, codes))
    backwards = chain_seeds(SEED, np.arange(n_a), R, codes[::-1])
    np.testing.assert_array_equal(backwards, seeds[:, ::-1])
    some = chain_seeds(SEED, np.array([9, 2]), R, codes)  # chains replicate by replicate
    np.testing.assert_array_equal(some, seeds.reshape(R, n_a, n_s)[:, [9, 2]].reshape(-1, n_s))
    assert service_key("ISVA") != service_key("IDVA")
    assert service_key("ISVA") == 0xFFC5C5C99AA451AC  # BLAKE2b: the same on every machine
    assert not (chain_seeds(SEED + 1, np.arange(n_a), R, codes) == seeds).any()


def _only(model: Model, case: Case, keep: list[int]) -> tuple[Model, Case]:
    """The model and the case with only the services ``keep``, in that order."""

    def cut(x: object, axis: int) -> object:
        if isinstance(x, tuple):
            return tuple(x[i] for i in keep)
        if isinstance(x, Uncertain):
            return dataclasses.replace(
                x,
                value=np.take(x.value, keep, axis),
                lo=np.take(x.lo, keep, axis),
                hi=np.take(x.hi, keep, axis),
            )
        assert isinstance(x, np.ndarray)
        return np.take(x, keep, axis)

    sv, st = model.services, model.staffing
    smaller = dataclasses.replace(
        model,
        services=Services(**{f.name: cut(getattr(sv, f.name), 0) for f in dataclasses.fields(sv)}),
        staffing=Staffing(**{f.name: cut(getattr(st, f.name), 1) for f in dataclasses.fields(st)}),
        need_mix=cut(model.need_mix, 1),
    )
    d = case.draws
    draws = Draws(
        pathway=d.pathway,
        need_mix=d.need_mix[:, :, keep],
        duration_weeks=d.duration_weeks[:, keep],
        drop_out_per_month=d.drop_out_per_month[:, keep],
        cost_per_fte=d.cost_per_fte[:, keep],
        reengage_share=d.reengage_share[:, keep],
    )
    return smaller, Case(case.sc, case.arrivals[:, :, keep], draws, case.sizes)


def test_a_services_numbers_do_not_depend_on_the_other_services_in_the_model(
    model: Model, case: Case
) -> None:
    """A model without some services, the others in another order: given the same inputs
    (referrals, parameter draws), each service left has the numbers it had in the whole
    model, at its new position (its random stream is keyed by its code)."""
    _, whole = _all_services(model, case, None)
    keep = [5, 3, 1, 2]
    smaller, small_case = _only(model, case, keep)
    assert smaller.services.codes == tuple(model.services.codes[s] for s in keep)
    _, part = _all_services(smaller, small_case, None)
    assert set(part) == set(whole)
    for key, value in whole.items():
        np.testing.assert_array_equal(part[key], value[:, :, keep], err_msg=key)


def test_a_service_twice_in_a_chunk_is_refused(model: Model, case: Case) -> None:
    with pytest.raises(ValueError, match="differ"):
        chunk_inputs(model, case.sc, case.arrivals, case.draws, case.sizes, SEED, services=[2, 2])


def test_a_lever_on_one_service_leaves_the_others_numbers_as_they_were(model: Model) -> None:
    """Common random numbers across services in ``projection.run``: the same scenario with
    more staff for one service (a lever appended, the name kept, as the explorer does) has
    every other service's figures, replicate by replicate, exactly as the scenario's own."""
    base = model.scenario("reports-up-20pc")  # its lever has an interval: sizes are drawn
    assert base.levers[0].interval is not None
    more = Lever.model_validate({"lever": "fte", "change": 0.4, "services": ["COUNSELLING"]})
    moved = Scenario(name=base.name, levers=(*base.levers, more))
    a, b = (
        run(dataclasses.replace(model, scenarios=(sc,)), None, R, SEED).scenarios[0]
        for sc in (base, moved)
    )
    s = model.services.codes.index("COUNSELLING")
    others = [i for i in range(len(model.services)) if i != s]
    assert not np.array_equal(a.metrics["waiting"][:, :, s], b.metrics["waiting"][:, :, s])
    for key, value in a.metrics.items():
        np.testing.assert_array_equal(
            b.metrics[key][:, :, others], value[:, :, others], err_msg=key
        )
        np.testing.assert_array_equal(
            b.deterministic[key][:, others], a.deterministic[key][:, others], err_msg=key
        )


def test_chunk_metrics_leave_out_only_what_is_not_wanted(model: Model, case: Case) -> None:
    args = (model, case.sc, case.arrivals, case.draws, case.sizes, SEED)
    flow_in, chunk = chunk_inputs(*args, areas=[0, 1])
    out = simulate(flow_in, stochastic=True)
    every = chunk_metrics(out, chunk, model)
    some = chunk_metrics(out, chunk, model, wanted=["starts", "capacity", "fte_shortfall"])
    assert set(some) == {"starts", "capacity", "fte_shortfall"}
    for key, value in some.items():
        np.testing.assert_array_equal(value, every[key], err_msg=key)
    chunked = run_chunk(*args, stochastic=True, areas=[0, 1])
    for key, value in every.items():
        np.testing.assert_array_equal(value, chunked[key], err_msg=key)


def _with_total_as_written_before(
    m: dict[str, np.ndarray], served: np.ndarray
) -> dict[str, np.ndarray]:
    """``with_total`` as it was before it skipped copies (the reference)."""
    mask = served[None, :, :, None]
    out = {}
    starts = np.where(mask, m["starts"], 0)
    total_starts = starts.sum(1, keepdims=True)
    for key, x in m.items():
        x = np.where(mask, x, np.float32(np.nan))
        if key in SUMMED:
            tot = np.nansum(x, axis=1, keepdims=True)
        elif key in ("mean_wait_weeks", "within_target_share"):
            with np.errstate(invalid="ignore", divide="ignore"):
                tot = np.nansum(x * starts, axis=1, keepdims=True) / total_starts
        elif key in ("utilisation", "caseload_per_fte"):
            denom = m["places"] if key == "utilisation" else m["fte"]
            with np.errstate(invalid="ignore", divide="ignore"):
                tot = np.where(mask, m["open_cases"], 0).sum(1, keepdims=True) / np.where(
                    mask, denom, 0
                ).sum(1, keepdims=True)
        else:
            tot = np.full_like(x[:, :1], np.nan)
        out[key] = np.concatenate([x, tot.astype(np.float32)], axis=1)
    served_any = np.asarray(served.any(axis=0))[None, None, :, None]
    for key in out:
        out[key][:, -1:] = np.where(served_any, out[key][:, -1:], np.nan)
    return out


@pytest.mark.parametrize("gaps", [False, True])
@pytest.mark.parametrize("nan", [False, True])
def test_with_total_gives_the_sums_it_gave_and_its_last_row_alone(gaps: bool, nan: bool) -> None:
    rng = np.random.default_rng(5)
    shape = (7, 9, 4, 13)
    m = {k: rng.gamma(2.0, 50.0, shape).astype(np.float32) for k in METRICS}
    m["starts"][rng.random(shape) < 0.1] = 0.0
    if nan:  # waits where nobody started, and a few anywhere
        for key in ("mean_wait_weeks", "within_target_share", "p90_wait_weeks"):
            m[key][m["starts"] == 0] = np.nan
        m["caseload_per_fte"][rng.random(shape) < 0.05] = np.nan
    served = np.ones(shape[1:3], dtype=bool)
    if gaps:
        served[[0, 4, 5], 1] = False
        served[:, 3] = False  # a service nowhere
    want = _with_total_as_written_before(m, served)
    got = with_total(m, served)
    alone = with_total(m, served, totals_only=True)
    for key in METRICS:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        np.testing.assert_array_equal(alone[key], want[key][:, -1:], err_msg=key)
    assert np.isnan(got["referrals"][:, -1, 3]).all() == gaps


def test_a_chunk_of_areas_gives_the_whole_runs_metrics_for_them(model: Model, case: Case) -> None:
    """Areas sliced first, chains replicate by replicate: the same numbers."""
    _, whole = _all_services(model, case, None)
    _, some = _all_services(model, case, [30, 2, 5])
    for key, value in some.items():
        np.testing.assert_array_equal(value, whole[key][:, [30, 2, 5]], err_msg=key)


def test_referrals_of_some_services_are_their_columns_of_every_services(tmp_path: Path) -> None:
    """``referrals(..., services=...)`` (the explorer asks for the services it re-runs) gives
    exactly those columns of the whole, in the order asked, with every kind of demand lever
    moved; and a chunk of those services from them is the chunk from the whole."""
    model = load_model(write_example(tmp_path / "m"))
    levers = (
        Lever(lever="police_reports", change=0.2, interval=(0.1, 0.3)),
        Lever(lever="referral_share", change=-0.1),
        Lever(lever="self_referral", change=0.15),
        Lever(lever="referral_model", value="opt-out", offences=(model.offence_codes[-1],)),
    )
    sc = Scenario(name="moved", levers=levers)
    rng = np.random.default_rng(4)
    draws = draw_parameters(model, 6, rng)
    sizes = lever_sizes(sc, 6, rng)
    crime = rng.uniform(
        0.0, 40.0, size=(6, len(model.area_codes), len(model.offence_codes), len(model.months))
    )
    whole = referrals(model, crime, draws, sc, sizes)
    n_s = whole.shape[2]
    for subset in ([0], [n_s - 1], [3, 1], list(range(n_s))[::-1], [2, 4, 5]):
        part = referrals(model, crime, draws, sc, sizes, services=subset)
        np.testing.assert_array_equal(part, whole[:, :, subset])
        a, _ = chunk_inputs(model, sc, whole, draws, sizes, 1, services=subset)
        b, _ = chunk_inputs(
            model, sc, part, draws, sizes, 1, services=subset, arrivals_of_services=True
        )
        np.testing.assert_array_equal(a.arrivals, b.arrivals)
    with pytest.raises(ValueError, match="arrivals for 2 services, not the 1"):
        chunk_inputs(
            model, sc, whole[:, :, :2], draws, sizes, 1, services=[0], arrivals_of_services=True
        )


def _journey(
    model: Model, crime: np.ndarray, draws: Draws, sc: Scenario, sizes: LeverSizes
) -> np.ndarray:
    """Expected referrals (R, A, S, T, 2) stated with whole NumPy arrays, lever by lever, as
    the victim journey reads (docs/model.md section 3): recorded crimes moved by police-report
    levers and floored at 0, times the share the police refer (moved, then kept within 0 to
    1) and the consent share (of each area's own referral model, or of the other where a
    referral-model lever switches it); plus unreported victims who seek help (moved by
    self-referral levers); times contact, less those who decline; split into priority and
    standard; shared among services by the need mix, summed over offences in order; zero
    where an area has no such service."""
    p = draws.pathway
    months = np.arange(model.first_month, model.first_month + crime.shape[-1])
    crime = crime.copy()
    share = np.repeat(p["referral_share"][..., None], crime.shape[-1], axis=-1)
    seeking = np.repeat(p["help_seeking"][..., None], crime.shape[-1], axis=-1)
    switched = np.zeros(crime.shape)
    for i, lv in enumerate(sc.levers):
        in_area = np.array([lv.areas is None or a in lv.areas for a in model.area_codes])
        in_off = np.array([lv.offences is None or o in lv.offences for o in model.offence_codes])
        reach = (
            in_area.astype(float)[:, None, None]
            * in_off.astype(float)[None, :, None]
            * lv.profile_weights(months, model.first_month)[None, None, :]
        )[None]
        size = sizes.sizes[i].reshape(-1, 1, 1, 1)
        if lv.lever == "police_reports":
            crime = crime * (1.0 + size * reach)
        elif lv.lever == "referral_share":
            share = np.clip(share * (1.0 + size * reach), 0.0, 1.0)
        elif lv.lever == "self_referral":
            seeking = seeking * (1.0 + size * reach)
        elif lv.lever == "referral_model":
            differs = (model.pathway.opt_out != (lv.value == "opt-out"))[None, :, :, None]
            switched = np.where(differs, np.maximum(switched, reach), switched)
    opt_out = model.pathway.opt_out[None, :, :, None]
    c_in, c_out = p["consent_opt_in"][..., None], p["consent_opt_out"][..., None]
    consent = (1.0 - switched) * np.where(opt_out, c_out, c_in)
    consent = consent + switched * np.where(opt_out, c_in, c_out)
    police = np.maximum(crime, 0.0) * share * consent
    unreported = p["prevalence"] * model.adult_population[None, :, None]
    unreported = unreported * (1.0 - p["report_share"]) / 12.0
    engaged = police * p["contact_share"][..., None] + unreported[..., None] * seeking
    engaged = engaged * (1.0 - p["decline_share"][..., None])
    prio = p["priority_share"][..., None]
    out = np.zeros((*crime.shape[:2], draws.need_mix.shape[2], crime.shape[3], 2))
    for c, part in enumerate((engaged * prio, engaged * (1.0 - prio))):
        for o in range(crime.shape[2]):  # (R, A, T) x (R, S) -> (R, A, S, T)
            out[..., c] += part[:, :, o, None, :] * draws.need_mix[:, o, None, :, None]
    return out * model.staffing.served[None, :, :, None, None]


@pytest.mark.parametrize("replicates", [1, 7])
def test_referrals_are_the_victim_journey_to_the_last_bit(tmp_path: Path, replicates: int) -> None:
    """The referrals kernel gives, bit for bit, the victim journey stated above with whole
    arrays: every kind of demand lever, two of a kind in a row, levers limited to areas or
    offences, a ramp, a referral share pushed over 1 (kept at 1) and crimes pushed below 0
    (kept at 0); with the levers active in part (the waterfall's use) and for some services."""
    model = load_model(write_example(tmp_path / "m"))
    area, off = model.area_codes[2], model.offence_codes[1]
    levers = (
        Lever(lever="police_reports", change=0.3, areas=(area,)),
        Lever(lever="referral_share", change=0.9, profile="ramp", ramp_months=9),
        Lever(lever="referral_share", change=0.8, offences=(off,)),
        Lever(lever="self_referral", change=-0.4),
        Lever(lever="referral_model", value="opt-in", offences=(off,)),
        Lever(lever="referral_model", value="opt-out"),
        Lever(lever="police_reports", change=-0.5, offences=(off,)),
        Lever(lever="fte", change=0.2),  # not a demand lever: no effect here
    )
    sc = Scenario(name="journey", levers=levers)
    rng = np.random.default_rng(11)
    draws = draw_parameters(model, replicates, rng)
    sizes = lever_sizes(sc, replicates, rng)
    shape = (replicates, len(model.area_codes), len(model.offence_codes), len(model.months))
    crime = rng.uniform(-5.0, 60.0, size=shape)  # some below 0
    got = referrals(model, crime, draws, sc, sizes)
    want = _journey(model, crime, draws, sc, sizes)
    assert (want[..., 0] > 0).any()  # a real case: referrals,
    assert (want == 0).any()  # and none where an area has no such service
    np.testing.assert_array_equal(got, want)
    assert got.shape == (*shape[:2], len(model.services.codes), shape[3], 2)
    part = referrals(model, crime, draws, sc, sizes, active=[0, 3, 7])
    only = Scenario(name="journey", levers=tuple(levers[i] for i in (0, 3, 7)))
    kept = LeverSizes(tuple(sizes.sizes[i] for i in (0, 3, 7)))
    np.testing.assert_array_equal(part, _journey(model, crime, draws, only, kept))
    some = referrals(model, crime, draws, sc, sizes, services=[4, 1])
    np.testing.assert_array_equal(some, want[:, :, [4, 1]])
    # by hand, one cell: replicate 0, an area no area-limited lever touches, the first month
    r, a, t = 0, 0, 0
    size = [float(x[r]) for x in sizes.sizes]
    total = np.zeros((len(model.services.codes), 2))
    for o, code in enumerate(model.offence_codes):
        p = {k: float(v[r, a, o]) for k, v in draws.pathway.items()}
        mine = code == off
        crimes = max(crime[r, a, o, t] * (1 + size[6] if mine else 1.0), 0.0)
        share = p["referral_share"] * (1 + size[1] / 9)  # the ramp's first month: 1/9
        share = min(share * (1 + size[2]) if mine else share, 1.0)
        # the last lever makes every opt-in area opt-out; for ``off`` the one before it
        # switches opt-out areas to opt-in: either way the other model there
        opt_out = bool(model.pathway.opt_out[a, o])
        consent = p["consent_opt_in" if mine and opt_out else "consent_opt_out"]
        unreported = p["prevalence"] * model.adult_population[a] * (1 - p["report_share"]) / 12
        engaged = crimes * share * consent * p["contact_share"]
        engaged = (engaged + unreported * p["help_seeking"] * (1 + size[3])) * (
            1 - p["decline_share"]
        )
        split = np.array([p["priority_share"], 1 - p["priority_share"]])
        total += np.outer(draws.need_mix[r, o] * model.staffing.served[a], split) * engaged
    np.testing.assert_allclose(got[r, a, :, t], total, rtol=1e-12)
