"""The slider lanes (needsled.web.sliders): latest wins per browser session, identical
settings share one computation, computations start in arrival order, a few per lane at once.

A lane is held busy by a computation that waits for an event, so that what queues behind it
can be seen deterministically (no timing in these tests); the computations are plain
functions that record that they ran. Most tests run each lane one computation at a time, so
that the order they run in is the order they started in; the last ones run the lanes as the
web application does."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest
from numba.np.ufunc.parallel import threading_layer

from needsled.stats import summarise
from needsled.web.errors import Unavailable
from needsled.web.explore import LANE_NICE, _worker, lower_priority
from needsled.web.sliders import LANE_THREADS, LANES, SliderTraffic, Superseded

WAIT = 30  # seconds: only a guard against a hang, never a measurement


@pytest.fixture
def lanes() -> Iterator[SliderTraffic]:
    t = SliderTraffic(threads=dict.fromkeys(LANES, 1))
    yield t
    t.shutdown()


class Ran:
    def __init__(self) -> None:
        self.names: list[str] = []
        self._lock = threading.Lock()

    def job(self, name: str) -> Callable[[], dict[str, Any]]:
        def compute() -> dict[str, Any]:
            with self._lock:
                self.names.append(name)
            return {"name": name}

        return compute


def _block(lanes: SliderTraffic, preview: bool = False) -> tuple[threading.Event, Future[Any]]:
    """Occupy the lane until the event is set; returns once the blocker is running."""
    running, release = threading.Event(), threading.Event()

    def hold() -> dict[str, Any]:
        running.set()
        release.wait(WAIT)
        return {"name": "blocker"}

    fut = lanes.submit(("blocker", preview), preview=preview, owner=None, settings=0, compute=hold)
    assert running.wait(WAIT)
    return release, fut


def test_a_newer_request_from_the_session_supersedes_a_waiting_one(lanes: SliderTraffic) -> None:
    ran = Ran()
    release, blocker = _block(lanes)
    a = lanes.submit("a", preview=False, owner="s1", settings=1, compute=ran.job("a"))
    b = lanes.submit("b", preview=False, owner="s1", settings=2, compute=ran.job("b"))
    with pytest.raises(Superseded):  # answered at once, before the lane is free
        a.result(WAIT)
    assert lanes.waiting("full") == 1  # a's computation left the queue
    release.set()
    assert b.result(WAIT) == {"name": "b"}
    assert blocker.result(WAIT) == {"name": "blocker"}
    assert ran.names == ["b"]  # a was never computed
    assert lanes.counts["full"].dropped == 1
    assert lanes.counts["full"].superseded == 1


def test_other_sessions_scripts_and_the_same_settings_are_not_superseded(
    lanes: SliderTraffic,
) -> None:
    ran = Ran()
    release, _ = _block(lanes)
    mine = lanes.submit("a", preview=False, owner="s1", settings=1, compute=ran.job("a"))
    theirs = lanes.submit("b", preview=False, owner="s2", settings=2, compute=ran.job("b"))
    script = lanes.submit("c", preview=False, owner=None, settings=3, compute=ran.job("c"))
    script2 = lanes.submit("d", preview=False, owner=None, settings=4, compute=ran.job("d"))
    # the same settings in the other mode (the page's preview, then its full request)
    quick = lanes.submit("a-quick", preview=True, owner="s1", settings=1, compute=ran.job("aq"))
    assert quick.result(WAIT) == {"name": "aq"}  # previews do not wait behind full results
    release.set()
    assert [f.result(WAIT)["name"] for f in (mine, theirs, script, script2)] == list("abcd")
    assert ran.names == ["aq", "a", "b", "c", "d"]  # the full lane in arrival order


def test_identical_settings_share_one_computation(lanes: SliderTraffic) -> None:
    ran = Ran()
    release, _ = _block(lanes)
    answers = [
        lanes.submit("same", preview=False, owner=f"s{i}", settings=1, compute=ran.job("same"))
        for i in range(5)
    ]
    answers.append(
        lanes.submit("same", preview=False, owner=None, settings=1, compute=ran.job("x"))
    )
    release.set()
    assert [a.result(WAIT) for a in answers] == [{"name": "same"}] * 6
    assert ran.names == ["same"]
    assert lanes.counts["full"].joined == 5


def test_a_shared_computation_survives_one_of_its_requests_being_superseded(
    lanes: SliderTraffic,
) -> None:
    ran = Ran()
    release, _ = _block(lanes)
    s1 = lanes.submit("k", preview=False, owner="s1", settings=1, compute=ran.job("k"))
    s2 = lanes.submit("k", preview=False, owner="s2", settings=1, compute=ran.job("k"))
    lanes.submit("k2", preview=False, owner="s1", settings=2, compute=ran.job("k2"))
    with pytest.raises(Superseded):
        s1.result(WAIT)
    release.set()
    assert s2.result(WAIT) == {"name": "k"}  # s2 still wanted it
    assert ran.names == ["k", "k2"]


def test_a_failure_reaches_every_request_waiting_for_it(lanes: SliderTraffic) -> None:
    release, _ = _block(lanes)

    def fails() -> dict[str, Any]:
        raise ValueError("bad settings")

    a = lanes.submit("f", preview=False, owner="s1", settings=1, compute=fails)
    b = lanes.submit("f", preview=False, owner="s2", settings=1, compute=fails)
    release.set()
    for fut in (a, b):
        with pytest.raises(ValueError, match="bad settings"):
            fut.result(WAIT)
    ok = lanes.submit("g", preview=False, owner="s1", settings=2, compute=Ran().job("g"))
    assert ok.result(WAIT) == {"name": "g"}  # the lane goes on


def test_stopping_answers_what_is_still_waiting() -> None:
    """An application stopped (and perhaps started again in the same process, as the tests
    do) leaves no request waiting for a lane that is gone."""
    lanes = SliderTraffic(threads=dict.fromkeys(LANES, 1))
    release, _ = _block(lanes)
    waiting = lanes.submit("w", preview=False, owner="s1", settings=1, compute=Ran().job("w"))
    lanes.shutdown()
    with pytest.raises(Unavailable, match="stopping"):
        waiting.result(WAIT)
    release.set()
    again = lanes.submit("x", preview=False, owner="s1", settings=2, compute=Ran().job("x"))
    assert again.result(WAIT) == {"name": "x"}  # a new lane after a restart
    lanes.shutdown()


def test_a_request_whose_client_went_away_is_not_computed(lanes: SliderTraffic) -> None:
    ran = Ran()
    release, _ = _block(lanes)
    gone = lanes.submit("g", preview=False, owner="s1", settings=1, compute=ran.job("g"))
    shared = lanes.submit("k", preview=False, owner="s2", settings=2, compute=ran.job("k"))
    kept = lanes.submit("k", preview=False, owner="s3", settings=2, compute=ran.job("k"))
    lanes.withdraw(gone)
    lanes.withdraw(shared)  # another request still waits for the same computation
    assert lanes.waiting("full") == 1
    release.set()
    assert kept.result(WAIT) == {"name": "k"}
    assert ran.names == ["k"]
    assert lanes.counts["full"].withdrawn == 2
    assert lanes.counts["full"].dropped == 1


def test_quick_full_results_do_not_wait_behind_a_heavy_one(lanes: SliderTraffic) -> None:
    """A heavy full result (the engine for several services) has its own lane: a quick full
    result is computed while a heavy one runs, and heavy ones queue among themselves."""
    ran = Ran()
    running, release = threading.Event(), threading.Event()

    def heavy() -> dict[str, Any]:
        running.set()
        release.wait(WAIT)
        return {"name": "heavy"}

    first = lanes.submit("h1", preview=False, owner="s1", settings=1, compute=heavy, heavy=True)
    assert running.wait(WAIT)
    second = lanes.submit(
        "h2", preview=False, owner="s2", settings=2, compute=ran.job("h2"), heavy=True
    )
    quick = lanes.submit("q", preview=False, owner="s3", settings=3, compute=ran.job("q"))
    assert quick.result(WAIT) == {"name": "q"}
    assert lanes.waiting("heavy") == 1
    assert not second.done()
    release.set()
    assert first.result(WAIT) == {"name": "heavy"}
    assert second.result(WAIT) == {"name": "h2"}
    assert ran.names == ["q", "h2"]
    assert lanes.counts["heavy"].computed == 2
    assert lanes.counts["full"].computed == 1


def test_a_newer_request_supersedes_the_sessions_request_in_another_lane(
    lanes: SliderTraffic,
) -> None:
    ran = Ran()
    release, _ = _block(lanes)
    held = threading.Event()

    def hold() -> dict[str, Any]:
        held.set()
        release.wait(WAIT)
        return {"name": "heavy blocker"}

    lanes.submit("hb", preview=False, owner=None, settings=0, compute=hold, heavy=True)
    assert held.wait(WAIT)
    old = lanes.submit(
        "old", preview=False, owner="s1", settings=1, compute=ran.job("old"), heavy=True
    )
    new = lanes.submit("new", preview=False, owner="s1", settings=2, compute=ran.job("new"))
    with pytest.raises(Superseded):
        old.result(WAIT)
    release.set()
    assert new.result(WAIT) == {"name": "new"}
    assert "old" not in ran.names
    assert lanes.counts["heavy"].dropped == 1


def test_a_lane_runs_as_many_at_once_as_it_has_threads() -> None:
    """As the web application runs them: two quick full results at once (one's Python goes
    on while the other's engine runs), a third waits its turn; one heavy result at a time."""
    assert LANE_THREADS["full"] == 2
    assert LANE_THREADS["heavy"] == 1
    assert LANE_THREADS["preview"] == 1
    lanes = SliderTraffic()
    try:
        release = threading.Event()
        running: list[str] = []
        lock = threading.Lock()
        both = threading.Barrier(3)  # the two computations and this test meet here
        heavy_running = threading.Event()

        def hold(name: str) -> Callable[[], dict[str, Any]]:
            def compute() -> dict[str, Any]:
                with lock:
                    running.append(name)
                if name == "h1":
                    heavy_running.set()
                if name in ("a", "b"):
                    both.wait(WAIT)  # only passes when both run at once
                release.wait(WAIT)
                return {"name": name}

            return compute

        a = lanes.submit("a", preview=False, owner=None, settings=1, compute=hold("a"))
        b = lanes.submit("b", preview=False, owner=None, settings=2, compute=hold("b"))
        both.wait(WAIT)
        c = lanes.submit("c", preview=False, owner=None, settings=3, compute=hold("c"))
        h1 = lanes.submit(
            "h1", preview=False, heavy=True, owner=None, settings=4, compute=hold("h1")
        )
        h2 = lanes.submit(
            "h2", preview=False, heavy=True, owner=None, settings=5, compute=hold("h2")
        )
        assert lanes.waiting("full") == 1  # c waits for a thread
        assert heavy_running.wait(WAIT)
        assert lanes.waiting("heavy") == 1  # h2 waits behind h1
        assert sorted(running) == ["a", "b", "h1"]
        release.set()
        assert [f.result(WAIT)["name"] for f in (a, b, c, h1, h2)] == ["a", "b", "c", "h1", "h2"]
    finally:
        lanes.shutdown()


def _nice_of(tid: int) -> int:
    """A thread's nice value as the kernel reports it (/proc, field 19 of its stat line)."""
    stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


LINUX = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="threads have their own priority on Linux only"
)


@LINUX
def test_lower_priority_lowers_the_calling_thread_and_the_threads_it_starts() -> None:
    """``lower_priority`` lowers the thread that calls it, not the process: the caller's
    nice value rises by the increment (at most to 19), a thread it starts afterwards inherits
    it (as the engine's parallel workers do), and the test's own thread keeps its own."""
    mine = _nice_of(threading.get_native_id())
    seen: dict[str, int] = {}

    def lowered() -> None:
        seen["before"] = _nice_of(threading.get_native_id())
        seen["lowered"] = int(lower_priority(3))
        seen["after"] = _nice_of(threading.get_native_id())
        child = threading.Thread(
            target=lambda: seen.update(child=_nice_of(threading.get_native_id()))
        )
        child.start()
        child.join(WAIT)
        seen["again"] = int(lower_priority(40))  # beyond the lowest: stops at 19
        seen["lowest"] = _nice_of(threading.get_native_id())
        seen["zero"] = int(lower_priority(0))  # nothing to do
        seen["still"] = _nice_of(threading.get_native_id())

    t = threading.Thread(target=lowered)
    t.start()
    t.join(WAIT)
    assert seen["before"] == mine
    assert seen["lowered"] == 1
    assert seen["after"] == min(19, mine + 3)
    assert seen["child"] == seen["after"]
    assert seen["again"] == 1
    assert seen["lowest"] == 19
    assert seen["zero"] == 0
    assert seen["still"] == 19
    assert _nice_of(threading.get_native_id()) == mine


@LINUX
def test_heavy_results_run_at_a_lower_priority_than_previews_and_quick_ones() -> None:
    """The explorer's heavy lane computes at the lowest priority, its engine's parallel
    workers too, so that under load previews and quick results take the CPU first; the
    preview and quick lanes keep the server's own priority."""
    assert LANE_NICE["heavy"] > 0
    assert LANE_NICE["preview"] == LANE_NICE["full"] == 0
    process = os.getpriority(os.PRIO_PROCESS, 0)

    def nice_here() -> int:
        return _nice_of(threading.get_native_id())

    assert _worker("preview").submit(nice_here).result(WAIT) == process
    assert _worker("full").submit(nice_here).result(WAIT) == process
    heavy = min(19, process + LANE_NICE["heavy"])
    assert _worker("heavy").submit(nice_here).result(WAIT) == heavy

    def run_engine() -> str:
        """A parallel kernel run on this thread (the NaN-aware summary); the threading layer."""
        x = np.random.default_rng(1).random((50, 4000)).astype(np.float32)
        x[0, 0] = np.nan
        summarise(x)
        return str(threading_layer())  # type: ignore[no-untyped-call]

    layer = _worker("heavy").submit(run_engine).result(WAIT)
    if numba.get_num_threads() < 2 or layer != "omp" or heavy == process:
        return  # the workers are shared (or none), or nothing lower to tell apart
    tasks = [int(p.name) for p in Path("/proc/self/task").iterdir()]
    lowered = [t for t in tasks if _nice_of(t) == heavy]
    # the lane's thread and the workers its kernels started (OpenMP: a team per thread)
    assert len(lowered) >= numba.get_num_threads()
