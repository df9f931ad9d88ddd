"""Bounded load test of the explorer's web endpoint: sessions on loopback moving sliders.

    NEEDSLED_LOAD_EMAIL=... NEEDSLED_LOAD_PASSWORD=... \\
        python benchmarks/bench_web_load.py --url http://127.0.0.1:8000 --pid SERVER_PID

Each of ``--sessions`` (20) threads signs in as the same user (its own cookie jar), then for
``--duration`` (60) seconds moves sliders like a colleague at the page: it picks a lever,
drags it over a few positions one step apart (``--think`` seconds between positions) and
waits for each answer before sending the next. Every request has a timeout, every session
stops at the deadline, and no session sends more than ``--max-requests``: the load is
bounded. It prints the median and 95th percentile latency, the errors, and the server's
resident memory (RSS of ``--pid``, and its children with ``--children``) sampled every
second. Target (issue 6): p95 at most 1 s, no errors, memory flat.

What it assumes about the web API (all paths can be changed on the command line):

- ``POST /api/session`` with JSON ``{"email", "password"}`` signs in and sets a session
  cookie;
- ``GET /api/session`` answers JSON with ``csrf_token`` (if it is missing or not JSON, the
  ``csrf_token`` of the sign-in answer is used), sent back as header ``X-CSRF-Token``;
- ``GET /api/models`` lists models as JSON objects with ``id`` (used when ``--model`` is
  not given: the first model);
- ``GET /api/models/{id}/levers`` gives the levers as ``needsled.web.explore`` describes
  them (``key`` or ``name``, ``min``, ``max``, ``step``, ``default``);
- ``POST /api/models/{id}/explore`` with JSON ``{"scenario": ..., "settings": {...}}``
  answers 200 with the result (``--preview-field`` adds ``"mode": "preview"`` to the
  positions passed over during a drag, if the endpoint has such a field).

Standard library only (urllib, threads), so it runs wherever the server does.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

TARGET_P95_S = 1.0


@dataclass
class Sample:
    started: float  # seconds since the run began
    seconds: float
    kind: str  # "full" or "preview"
    status: int  # HTTP status, 0 for no answer
    error: str = ""


@dataclass
class Shared:
    samples: list[Sample] = field(default_factory=list)
    memory: list[tuple[float, float]] = field(default_factory=list)  # (t, MB)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    """One browser session: a cookie jar, the CSRF token, JSON in and out."""

    def __init__(self, base: str, timeout: float) -> None:
        self.base, self.timeout = base.rstrip("/"), timeout
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.csrf = ""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.csrf:
            req.add_header("X-CSRF-Token", self.csrf)
        try:
            with self.opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()[:300].decode("utf-8", "replace")
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    def sign_in(self, args: argparse.Namespace, email: str, password: str) -> None:
        status, answer = self.call("POST", args.login_path, {"email": email, "password": password})
        if status >= 300:
            raise SystemExit(f"sign-in failed: HTTP {status} {answer!r}")
        status, session = self.call("GET", args.session_path)
        token = session.get("csrf_token") if status == 200 and isinstance(session, dict) else None
        if not token and isinstance(answer, dict):
            token = answer.get("csrf_token")
        if not token:
            raise SystemExit(f"no csrf_token from GET {args.session_path} or the sign-in answer")
        self.csrf = str(token)


def rss_mb(pid: int, children: bool) -> float:
    """Resident memory of ``pid`` (and, with ``children``, of its child processes), MB."""
    pids = [pid]
    if children:
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            pids += [int(k) for k in kids]
        except OSError:
            pass
    total = 0.0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def watch_memory(
    args: argparse.Namespace, shared: Shared, t0: float, stop: threading.Event
) -> None:
    while not stop.is_set():
        mb = rss_mb(args.pid, args.children)
        with shared.lock:
            shared.memory.append((time.perf_counter() - t0, mb))
        stop.wait(1.0)


def positions(lever: dict[str, Any], now: float, rng: random.Random, steps: int) -> list[float]:
    """A drag from the current value, ``steps`` positions one step apart, within range."""
    lo, hi, step = float(lever["min"]), float(lever["max"]), float(lever["step"])
    direction = rng.choice((-1, 1))
    out = []
    x = now
    for _ in range(steps):
        if not lo <= x + direction * step <= hi:
            direction = -direction
        x = round(min(max(x + direction * step, lo), hi) / step) * step
        out.append(x)
    return out


def session(
    i: int,
    args: argparse.Namespace,
    creds: tuple[str, str],
    levers: list[Any],
    model: int,
    shared: Shared,
    t0: float,
    deadline: float,
) -> None:
    rng = random.Random(args.seed * 1000 + i)
    client = Client(args.url, args.timeout)
    client.sign_in(args, *creds)
    path = args.explore_path.format(id=model)
    settings: dict[str, float] = {}
    sent = 0
    while time.perf_counter() < deadline and sent < args.max_requests:
        lever = rng.choice(levers)
        key = str(lever.get("key") or lever["name"])
        drag = positions(lever, settings.get(key, float(lever["default"])), rng, rng.randint(2, 6))
        for n, x in enumerate(drag):
            if time.perf_counter() >= deadline or sent >= args.max_requests:
                break
            settings[key] = x
            last = n == len(drag) - 1
            body: dict[str, Any] = {"scenario": args.scenario, "settings": dict(settings)}
            kind = "full"
            if args.preview_field and not last:
                body["mode"], kind = "preview", "preview"
            start = time.perf_counter()
            try:
                status, answer = client.call("POST", path, body)
                error = "" if status == 200 else f"HTTP {status}: {str(answer)[:120]}"
            except (OSError, urllib.error.URLError) as exc:  # timeouts, refused connections
                status, error = 0, f"{type(exc).__name__}: {exc}"
            took = time.perf_counter() - start
            sent += 1
            with shared.lock:
                shared.samples.append(Sample(start - t0, took, kind, status, error))
            time.sleep(args.think * rng.uniform(0.5, 1.5))


def memory_trend(mem: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope of RSS (MB a minute) after the first quarter of the run (warm-up:
    the server's first computations allocate its working set), and the mean RSS then."""
    warm = [(t, mb) for t, mb in mem if t >= mem[-1][0] / 4] or mem
    ts, ms = [t for t, _ in warm], [mb for _, mb in warm]
    t_bar, m_bar = statistics.fmean(ts), statistics.fmean(ms)
    var = sum((t - t_bar) ** 2 for t in ts)
    slope = sum((t - t_bar) * (m - m_bar) for t, m in warm) / var if var else 0.0
    return slope * 60, m_bar


def quantile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def report(args: argparse.Namespace, shared: Shared, wall: float) -> dict[str, Any]:
    samples = shared.samples
    ok = [s.seconds for s in samples if not s.error]
    errors = [s for s in samples if s.error]
    figures: dict[str, Any] = {
        "sessions": args.sessions,
        "duration_s": round(wall, 1),
        "requests": len(samples),
        "errors": len(errors),
        "throughput_per_s": round(len(samples) / wall, 2) if wall else 0.0,
        "p50_s": round(quantile(ok, 0.5), 3),
        "p95_s": round(quantile(ok, 0.95), 3),
        "max_s": round(max(ok), 3) if ok else None,
    }
    print(
        f"\nrequests {len(samples)} in {wall:.1f} s ({figures['throughput_per_s']}/s), "
        f"errors {len(errors)}"
    )
    for kind in sorted({s.kind for s in samples}):
        xs = [s.seconds for s in samples if s.kind == kind and not s.error]
        print(
            f"  {kind:8s} n={len(xs):5d}  p50 {quantile(xs, 0.5):.3f} s  "
            f"p95 {quantile(xs, 0.95):.3f} s  max {max(xs, default=float('nan')):.3f} s"
        )
    verdict = "met" if figures["p95_s"] <= TARGET_P95_S and not errors else "NOT MET"
    print(
        f"latency p50 {figures['p50_s']:.3f} s, p95 {figures['p95_s']:.3f} s; "
        f"target p95 <= {TARGET_P95_S} s with no errors: {verdict}"
    )
    for e in errors[:5]:
        print(f"  error at {e.started:.1f} s: {e.error}")
    mem = shared.memory
    if mem:
        trend, steady = memory_trend(mem)
        figures |= {
            "rss_start_mb": round(mem[0][1], 1),
            "rss_peak_mb": round(max(m for _, m in mem), 1),
            "rss_end_mb": round(mem[-1][1], 1),
            "rss_trend_mb_per_min": round(trend, 1),
        }
        drift = abs(trend) * mem[-1][0] / 60
        print(
            f"server memory (pid {args.pid}{' + children' if args.children else ''}): "
            f"start {mem[0][1]:.0f} MB, peak {figures['rss_peak_mb']:.0f} MB, end "
            f"{mem[-1][1]:.0f} MB; trend after the first quarter {trend:+.0f} MB a minute "
            f"({'flat' if drift <= 0.1 * steady else 'NOT flat'}: drift over the run within "
            f"10% of the {steady:.0f} MB average)"
        )
        every = max(1, len(mem) // 12)
        print("  over time: " + ", ".join(f"{t:.0f}s {mb:.0f}" for t, mb in mem[::every]))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--pid", type=int, required=True, help="the server's process id")
    parser.add_argument("--children", action="store_true", help="add its child processes' RSS")
    parser.add_argument("--model", type=int, help="model id (default: the first listed)")
    parser.add_argument("--scenario", default=None, help="base scenario (default: the first)")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--think", type=float, default=0.3, help="seconds between positions")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--max-requests", type=int, default=2000, help="per session")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--preview-field",
        action="store_true",
        help='send "mode": "preview" for positions passed over in a drag',
    )
    parser.add_argument("--login-path", default="/api/session")
    parser.add_argument("--session-path", default="/api/session")
    parser.add_argument("--models-path", default="/api/models")
    parser.add_argument("--levers-path", default="/api/models/{id}/levers")
    parser.add_argument("--explore-path", default="/api/models/{id}/explore")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    creds = (
        os.environ.get("NEEDSLED_LOAD_EMAIL", ""),
        os.environ.get("NEEDSLED_LOAD_PASSWORD", ""),
    )
    if not all(creds):
        raise SystemExit(
            "set NEEDSLED_LOAD_EMAIL and NEEDSLED_LOAD_PASSWORD (the user to sign in as)"
        )
    if not 1 <= args.sessions <= 200 or not 0 < args.duration <= 3600:
        raise SystemExit("keep it bounded: 1 to 200 sessions, at most 3600 s")
    probe = Client(args.url, args.timeout)
    probe.sign_in(args, *creds)
    model = args.model
    if model is None:
        status, models = probe.call("GET", args.models_path)
        if status != 200 or not models:
            raise SystemExit(f"no model to explore: GET {args.models_path} gave HTTP {status}")
        model = int(models[0]["id"])
    status, levers = probe.call("GET", args.levers_path.format(id=model))
    if status != 200 or not levers:
        raise SystemExit(f"no levers: GET {args.levers_path.format(id=model)} gave HTTP {status}")
    movable = [lv for lv in levers if float(lv["max"]) > float(lv["min"])]
    status, _ = probe.call(
        "POST", args.explore_path.format(id=model), {"scenario": args.scenario, "settings": {}}
    )
    if status != 200:
        raise SystemExit(f"the explore endpoint answered HTTP {status} to the base settings")
    print(
        f"needsled web load: {args.sessions} sessions x {args.duration:.0f} s against "
        f"{args.url}, model {model}, {len(movable)} levers, think {args.think} s"
    )
    shared, stop = Shared(), threading.Event()
    t0 = time.perf_counter()
    deadline = t0 + args.duration
    watcher = threading.Thread(target=watch_memory, args=(args, shared, t0, stop), daemon=True)
    watcher.start()
    threads = [
        threading.Thread(
            target=session, args=(i, args, creds, movable, model, shared, t0, deadline)
        )
        for i in range(args.sessions)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.duration + args.timeout + 30)
    wall = time.perf_counter() - t0
    stop.set()
    watcher.join(5)
    figures = report(args, shared, wall)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
