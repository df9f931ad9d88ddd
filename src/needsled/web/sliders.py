"""Slider traffic: the explorer's requests from the pages, kept cheap and fair.

A colleague dragging a slider sends a quick preview at each position and one full request
when the slider rests (see ``static/explore.js``); twenty colleagues at once send far more
than two cores can compute. Between the route and the explorer:

- **Latest wins, per browser session.** A request from a session supersedes that session's
  older requests on the same model that are still waiting and are for other settings: those
  are answered at once with 409 ("replaced by a newer request") and never computed. (A
  computation already running finishes, and its result is kept by the explorer.) Requests
  with a personal API token are never superseded: a script gets every answer it asks for.
- **Identical settings share one computation**, across sessions and users: a request for the
  same model, scenario, mode and settings (defaults filled in) as one waiting or running
  joins it.
- **A few computations per lane at a time, started in arrival order** (:data:`LANE_THREADS`,
  as many as the explorer computes of that kind at once: one preview, two quick full
  results, one heavy one), on threads of the lane's own: a waiting request can still be
  superseded, and no session can fill the queue, since each has at most one waiting request
  per settings. There are three lanes: previews, so that they never wait behind a full
  result; full results that run the engine for one service at most (0.2 s or less for the
  London example); and *heavy* full results, which run it for several (a demand lever moved:
  about 0.8 s), so that the many quick ones never queue behind a heavy one
  (:meth:`needsled.web.explore.Explorer.heavy` tells them apart).
- **Nothing for a client that has gone**: a request whose connection closes while it waits
  (the page aborted it, or a script gave up) is withdrawn, and its computation dropped if
  nobody else waits for it. Under overload this keeps the lane from working through answers
  nobody will read while the requests still wanted wait behind them.
- **Bounded**: at most ``MAX_WAITING`` computations wait in a lane; beyond that, 503.

The explorer itself is called exactly as before (:func:`needsled.web.actions.evaluate`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from needsled.web.errors import Refused, Unavailable
from needsled.web.explore import LANE_THREADS

__all__ = ["LANES", "LANE_THREADS", "MAX_WAITING", "SliderTraffic", "Superseded"]

MAX_WAITING = 256
LANES = ("preview", "full", "heavy")

Result = dict[str, Any]


class Superseded(Refused):
    status = 409
    default = "A newer request from this page replaced this one before it was worked out."


@dataclass(eq=False)
class _Job:
    key: Hashable
    lane: str
    compute: Callable[[], Result]
    waiters: list[_Waiter] = field(default_factory=list)
    started: bool = False


@dataclass(eq=False)
class _Waiter:
    owner: Hashable | None  # (session, model) for a browser session; None: never superseded
    settings: Hashable
    answer: Future[Result] = field(default_factory=Future)
    job: _Job | None = None


@dataclass
class LaneCounts:
    computed: int = 0
    joined: int = 0  # requests that shared a computation already waiting or running
    superseded: int = 0
    withdrawn: int = 0  # requests whose client went away while they waited
    dropped: int = 0  # computations never run: every request for them was superseded or gone


class SliderTraffic:
    """The lanes (see :data:`LANES`) between the explorer routes and the explorer."""

    def __init__(self, threads: Mapping[str, int] | None = None) -> None:
        """``threads``: how many computations each lane runs at once (default
        :data:`LANE_THREADS`)."""
        self._threads = dict(LANE_THREADS if threads is None else threads)
        self._lock = threading.Lock()
        self._queues: dict[str, deque[_Job]] = {lane: deque() for lane in LANES}
        self._jobs: dict[Hashable, _Job] = {}  # waiting or running, by key
        self._waiting: dict[Hashable, list[_Waiter]] = {}  # by owner
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self.counts = {lane: LaneCounts() for lane in LANES}

    def submit(
        self,
        key: Hashable,
        *,
        preview: bool,
        owner: Hashable | None,
        settings: Hashable,
        compute: Callable[[], Result],
        heavy: bool = False,
    ) -> Future[Result]:
        """The answer for ``key`` (model, scenario, mode and settings), computed by
        ``compute`` unless a computation for the same key is waiting or running. ``owner``
        (a browser session and model, or None) and ``settings`` say which waiting requests
        this one supersedes; ``heavy``: a full result that runs the engine for several
        services (its own lane)."""
        lane = "preview" if preview else "heavy" if heavy else "full"
        waiter = _Waiter(owner, settings)
        superseded: list[_Waiter] = []
        run = False
        with self._lock:
            if owner is not None:
                mine = self._waiting.setdefault(owner, [])
                for old in [w for w in mine if w.settings != settings]:
                    self._detach(old)
                    superseded.append(old)
                mine.append(waiter)
            job = self._jobs.get(key)
            if job is None:
                if len(self._queues[lane]) >= MAX_WAITING:
                    self._forget(waiter)
                    raise Unavailable("The explorer is busy; try again in a moment.")
                job = _Job(key, lane, compute)
                self._jobs[key] = job
                self._queues[lane].append(job)
                run = True
            else:
                self.counts[job.lane].joined += 1
            job.waiters.append(waiter)
            waiter.job = job
            self.counts[lane].superseded += len(superseded)
        for old in superseded:
            if not old.answer.done():
                old.answer.set_exception(Superseded())
        if run:
            self._pool(lane).submit(self._run_next, lane)
        return waiter.answer

    def withdraw(self, answer: Future[Result]) -> None:
        """The request waiting for ``answer`` has gone (the page closed it, or its client
        gave up): take it off its computation, which is dropped if nobody else waits for it
        and it has not started."""
        with self._lock:
            for job in self._jobs.values():
                for w in job.waiters:
                    if w.answer is answer:
                        self._detach(w)
                        self.counts[job.lane].withdrawn += 1
                        return

    def waiting(self, lane: str) -> int:
        """How many computations wait (not running) in ``lane`` (one of :data:`LANES`)."""
        with self._lock:
            return len(self._queues[lane])

    def shutdown(self) -> None:
        """Stop the lanes: requests still waiting are answered 503 (a computation running
        finishes on its thread)."""
        with self._lock:
            pools, self._pools = self._pools, {}
            waiting = [job for q in self._queues.values() for job in q]
            for q in self._queues.values():
                q.clear()
            for job in waiting:
                self._jobs.pop(job.key, None)
        for pool in pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        for job in waiting:
            self._finish(job, None, Unavailable("The server is stopping; try again shortly."))

    # -- inside -------------------------------------------------------------------------------

    def _pool(self, lane: str) -> ThreadPoolExecutor:
        with self._lock:
            if lane not in self._pools:
                name = f"needsled-sliders-{lane}"
                self._pools[lane] = ThreadPoolExecutor(self._threads[lane], thread_name_prefix=name)
            return self._pools[lane]

    def _forget(self, waiter: _Waiter) -> None:
        """Take the waiter off its owner's list (under the lock)."""
        if waiter.owner is None:
            return
        mine = self._waiting.get(waiter.owner, [])
        if waiter in mine:
            mine.remove(waiter)
        if not mine:
            self._waiting.pop(waiter.owner, None)

    def _detach(self, waiter: _Waiter) -> None:
        """Take a superseded waiter off its job; a job nobody waits for and not yet started
        is dropped from its queue (under the lock)."""
        self._forget(waiter)
        job = waiter.job
        if job is None:
            return
        if waiter in job.waiters:
            job.waiters.remove(waiter)
        if not job.waiters and not job.started:
            self._queues[job.lane].remove(job)
            del self._jobs[job.key]
            self.counts[job.lane].dropped += 1

    def _run_next(self, lane: str) -> None:
        """On the lane's thread: the oldest waiting computation (one submitted per job; a
        dropped job leaves one call with nothing to do)."""
        with self._lock:
            queue = self._queues[lane]
            if not queue:
                return
            job = queue.popleft()
            job.started = True
        try:
            result = job.compute()
        except BaseException as exc:  # handed to every request waiting for it
            self._finish(job, None, exc)
        else:
            self._finish(job, result, None)

    def _finish(self, job: _Job, result: Result | None, exc: BaseException | None) -> None:
        with self._lock:
            self._jobs.pop(job.key, None)
            waiters, job.waiters = job.waiters, []
            for w in waiters:
                self._forget(w)
            self.counts[job.lane].computed += 1
        for w in waiters:
            if w.answer.done():
                continue
            if exc is not None:
                w.answer.set_exception(exc)
            else:
                assert result is not None
                w.answer.set_result(result)
