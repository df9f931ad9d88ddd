"""Tiny queues solved by hand: the deterministic engine must reproduce them exactly."""

from __future__ import annotations

import numpy as np
import pytest

from needsled.flow import FlowInputs, simulate


def one_service(
    arrivals: list[float] | np.ndarray,
    slots: float,
    *,
    phases: int = 1,
    hazard: float = 1.0,
    drop: float = 0.0,
    buckets: int = 12,
    waiting_start: list[float] | None = None,
    open_start: float = 0.0,
    priority: list[float] | None = None,
    priority_first: bool = True,
    stretch: bool = False,
    target: int = 1,
    reengage: tuple[float, int] = (0.0, 0),
) -> FlowInputs:
    t = len(arrivals)
    arr = np.zeros((1, 1, t, 2))
    arr[0, 0, :, 1] = arrivals
    if priority is not None:
        arr[0, 0, :, 0] = priority
    wait = np.zeros((1, 1, 2, buckets))
    if waiting_start:
        wait[0, 0, 1, : len(waiting_start)] = waiting_start
    return FlowInputs(
        arrivals=arr,
        slots=np.full((1, 1, t), float(slots)),
        hazard=np.full((1, 1, t), hazard),
        n_phases=np.array([phases]),
        drop=np.array([[drop]]),
        reengage_share=np.array([[reengage[0]]]),
        reengage_steps=np.array([reengage[1]]),
        waiting_start=wait,
        open_start=np.array([[open_start]]),
        target_steps=np.array([target]),
        stretch=np.array([stretch]),
        priority_first=np.array([priority_first]),
        seeds=np.array([[7]]),
    )


def series(inputs: FlowInputs, name: str) -> list[float]:
    out = simulate(inputs, stochastic=False)
    return [float(v) for v in getattr(out, name)[0, 0]]


def test_fixed_arrivals_and_durations_give_the_hand_solved_trajectory() -> None:
    # 3 referrals a month, 4 places, every case lasts exactly 2 months.
    # Month 0: 3 start (places 4). Month 1: 1 place free -> 1 starts, 2 wait.
    # Month 2: the 3 from month 0 close -> 3 free: the 2 waiting 1 month and 1 new start.
    fi = one_service([3, 3, 3, 3, 3, 3], slots=4, phases=2, hazard=1.0)
    assert series(fi, "starts") == [3, 1, 3, 1, 3, 1]
    assert series(fi, "waiting") == [0, 2, 2, 4, 4, 6]
    assert series(fi, "open_cases") == [3, 4, 4, 4, 4, 4]
    assert series(fi, "completions") == [0, 0, 3, 1, 3, 1]
    waits = series(fi, "mean_wait_steps")
    assert waits == pytest.approx([0, 0, 2 / 3, 1, 4 / 3, 2])
    # whoever starts in month 5 waited 2 months: the 90th percentile is 2
    assert series(fi, "p90_wait_steps")[-1] == 2
    # target is 1 month: in month 4 the 3 starts had waited 2, 1 and 1 months
    assert series(fi, "within_target_share")[4] == pytest.approx(2 / 3)


def test_fifo_serves_the_longest_wait_first_and_the_last_bucket_pools() -> None:
    # No places for two months, then 2 places a month and durations of 10 months.
    fi = one_service([1, 1, 1, 0, 0, 0], slots=0, phases=10, buckets=2)
    assert series(fi, "waiting") == [1, 2, 3, 3, 3, 3]
    # only 2 buckets: waits of 1 month or more are pooled in the last one
    fi2 = one_service([5, 0, 0, 0], slots=0, phases=10, buckets=2)
    assert series(fi2, "waiting") == [5, 5, 5, 5]


def test_priority_referrals_start_first() -> None:
    # 1 place a month, each case lasts 1 month; 1 standard referral waiting, then a priority
    # referral arrives each month: priority ones start, the standard one keeps waiting.
    fi = one_service([0, 0, 0], slots=1, waiting_start=[1], priority=[1, 1, 1], target=0)
    assert series(fi, "starts") == [1, 1, 1]
    assert series(fi, "waiting") == [1, 1, 1]
    assert series(fi, "mean_wait_steps") == [0, 0, 0]
    # every start is a priority referral seen at once (within the 0-step target)
    assert series(fi, "within_target_priority") == [1, 1, 1]
    # with first come first served the waiting standard referral goes first
    fifo = one_service(
        [0, 0, 0], slots=1, waiting_start=[1], priority=[1, 1, 1], priority_first=False
    )
    assert series(fifo, "mean_wait_steps") == [0, 1, 1]
    # one shared list: the classes are not told apart
    assert series(fifo, "within_target_priority") == [0, 0, 0]


def test_drop_out_while_waiting_is_geometric() -> None:
    fi = one_service([0, 0, 0, 0], slots=0, waiting_start=[100], drop=0.1)
    assert series(fi, "waiting") == pytest.approx([90, 81, 72.9, 65.61])
    assert series(fi, "drop_outs") == pytest.approx([10, 9, 8.1, 7.29])


def test_stretch_service_takes_everyone_at_once() -> None:
    fi = one_service([10, 10, 10], slots=5, phases=2, stretch=True)
    assert series(fi, "waiting") == [0, 0, 0]
    assert series(fi, "open_cases") == [10, 20, 20]  # above the 5 places: the caseload stretches


def test_reengagement_returns_without_a_new_wait() -> None:
    # 10 start in month 0 and all close in month 1 (1-month cases); half come back 2 months
    # later (month 3) straight into support, and close again a month after that.
    fi = one_service([10, 0, 0, 0, 0], slots=10, reengage=(0.5, 2))
    assert series(fi, "completions") == [0, 10, 0, 0, 5]
    assert series(fi, "open_cases") == [10, 0, 0, 5, 0]
    assert series(fi, "starts") == [10, 0, 0, 0, 0]  # returners are not new starts


def test_open_cases_at_start_occupy_places() -> None:
    fi = one_service([2, 2, 2], slots=4, phases=1, hazard=0.5, open_start=4)
    # month 0: 2 of 4 close, 2 free places take the 2 new referrals
    assert series(fi, "completions")[0] == 2
    assert series(fi, "starts")[0] == 2
    assert series(fi, "open_cases")[0] == 4


def test_shapes_that_do_not_fit_are_refused_with_a_message() -> None:
    fi = one_service([1, 1], slots=1)
    with pytest.raises(ValueError, match="slots has shape"):
        FlowInputs(**{**fi.__dict__, "slots": np.ones((1, 1, 3))})


def test_reporting_periods_sum_flows_and_keep_period_end_stocks() -> None:
    # Weekly steps reported by "month" of 2 weeks: 3 referrals a week, 2 places, 1-week cases.
    weekly = one_service([3] * 6, slots=2)
    monthly = FlowInputs(**{**weekly.__dict__, "period": np.array([0, 0, 1, 1, 2, 2])})
    w = simulate(weekly, stochastic=False)
    m = simulate(monthly, stochastic=False)
    assert m.referrals[0, 0].tolist() == [6, 6, 6]
    assert m.starts[0, 0].tolist() == w.starts[0, 0].reshape(3, 2).sum(1).tolist()
    assert m.waiting[0, 0].tolist() == w.waiting[0, 0, 1::2].tolist()  # the period's last week
    # weeks 2-3: starts waited 1 and 2 weeks (two each): mean 1.5, 90th percentile 2
    assert w.waiting[0, 0].tolist() == [1, 2, 3, 4, 5, 6]
    assert m.mean_wait_steps[0, 0, 1] == pytest.approx(
        (w.mean_wait_steps[0, 0, 2] * 2 + w.mean_wait_steps[0, 0, 3] * 2) / 4
    )
    assert m.p90_wait_steps[0, 0, 2] == max(w.p90_wait_steps[0, 0, 4:6])


def test_periods_must_rise_by_steps_of_one() -> None:
    fi = one_service([1, 1, 1], slots=1)
    with pytest.raises(ValueError, match="period must give"):
        FlowInputs(**{**fi.__dict__, "period": np.array([0, 2, 2])})
