"""Bounded load test of the explorer's web endpoint: sessions on loopback moving sliders.

    NEEDSLED_LOAD_EMAIL=... NEEDSLED_LOAD_PASSWORD=... \\
        python benchmarks/bench_web_load.py --url http://127.0.0.1:8000 --pid SERVER_PID

or, with nothing running, ``--serve``: a server of its own (``needsled serve`` on a free port
with a fresh data folder, an account, and the built-in London example uploaded; the first
start builds the explorer, a minute or two), stopped at the end.

Each of ``--sessions`` (20) threads signs in as the same user (its own cookie jar and so its
own session), then for ``--duration`` (60) seconds moves sliders like a colleague at the page.
``--mode page`` (the default) sends what ``static/explore.js`` sends: while a lever is dragged
over a few positions one step apart (``--think`` seconds between them), a preview (the quick
central estimate) for the latest position, one at a time; once it has been still for
``--settle`` (0.9) seconds, the full result, whose answer the colleague waits for and reads
for ``--look`` seconds before the next drag. ``--mode sequential`` (the first version of this
benchmark) asks for the full result at every position and waits for each answer (with
``--preview-field``, a preview for the positions passed over). Every request has a timeout,
every session stops at the deadline, and no session sends more than ``--max-requests``: the
load is bounded.

It prints the median and 95th percentile latency of each kind of request and of all (full
answers also split into quick ones, the engine for one service at most, and heavy ones, for
several), how many answers took over 1 s, the errors (409, a request replaced by a newer one
from the same session, is counted apart: the page expects it), the time from the slider
coming to rest to the full answer, and the server's resident memory (RSS of ``--pid``, and
its children with ``--children``) sampled every second. Target (issue 6): p95 at most 1 s,
no errors, memory flat.

What it assumes about the web API (all paths can be changed on the command line):
``POST /api/session`` with JSON ``{"email", "password"}`` signs in, sets a session cookie and
answers the ``csrf_token`` (sent back as ``X-CSRF-Token``); ``GET /api/models`` lists models
(``id``); ``GET /api/models/{id}/levers`` gives the levers (``name``, ``min``, ``max``, ``step``,
``default``); ``POST /api/models/{id}/evaluate`` with ``{"scenario", "settings", "mode"}``.

Standard library only (urllib, threads), so it runs wherever the server does (``--serve``
needs needsled installed).
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
    ran: int | None = None  # a full answer: services the engine ran (-1: kept whole)


@dataclass
class Shared:
    samples: list[Sample] = field(default_factory=list)
    memory: list[tuple[float, float]] = field(default_factory=list)  # (t, MB)
    at_rest: list[float] = field(default_factory=list)  # slider still -> full answer, s
    # full answers: (services the engine ran, or -1 when the answer was kept, the server's ms)
    work: list[tuple[int, float]] = field(default_factory=list)
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

    def upload(self, path: str, filename: str, data: bytes) -> tuple[int, Any]:
        """POST one file as multipart/form-data field ``files``."""
        boundary = "needsled-load-" + os.urandom(8).hex()
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{filename}"\r\nContent-Type: application/zip\r\n\r\n'
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        req = urllib.request.Request(self.base + path, data=body, method="POST")
        req.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
        req.add_header("X-CSRF-Token", self.csrf)
        try:
            with self.opener.open(req, timeout=max(self.timeout, 300)) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()[:500].decode("utf-8", "replace")

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


def timed_post(
    client: Client,
    path: str,
    body: dict[str, Any],
    kind: str,
    shared: Shared,
    t0: float,
    expected: tuple[int, ...],
) -> float:
    """POST one explorer request and record it (any status not ``expected`` is an error;
    a full answer also records what the engine ran); returns its latency in seconds."""
    start = time.perf_counter()
    answer: Any = None
    try:
        status, answer = client.call("POST", path, body)
        error = "" if status in expected else f"HTTP {status}: {str(answer)[:120]}"
    except (OSError, urllib.error.URLError) as exc:  # timeouts, refused connections
        status, error = 0, f"{type(exc).__name__}: {exc}"
    took = time.perf_counter() - start
    with shared.lock:
        sample = Sample(start - t0, took, kind, status, error)
        if kind == "full" and status == 200 and isinstance(answer, dict):
            work = work_done(answer)
            shared.work.append(work)
            sample.ran = work[0]
        shared.samples.append(sample)
    return took


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
            timed_post(client, path, body, kind, shared, t0, expected=(200,))
            sent += 1
            time.sleep(args.think * rng.uniform(0.5, 1.5))


def session_page(
    i: int,
    args: argparse.Namespace,
    creds: tuple[str, str],
    levers: list[Any],
    model: int,
    shared: Shared,
    t0: float,
    deadline: float,
) -> None:
    """One colleague at the page, sending what static/explore.js sends (see the docstring)."""
    rng = random.Random(args.seed * 1000 + i)
    client = Client(args.url, args.timeout)
    client.sign_in(args, *creds)
    path = args.explore_path.format(id=model)
    settings: dict[str, float] = {}
    lock = threading.Lock()
    state = {"busy": False, "again": False, "sent": 0}
    helpers: list[threading.Thread] = []

    def record(kind: str, body: dict[str, Any]) -> float:
        return timed_post(client, path, body, kind, shared, t0, expected=(200, 409))

    def allowed() -> bool:
        with lock:
            ok = time.perf_counter() < deadline and state["sent"] < args.max_requests
            if ok:
                state["sent"] += 1
            return ok

    def preview_loop() -> None:
        while True:
            with lock:
                body = {"scenario": args.scenario, "settings": dict(settings), "mode": "preview"}
                state["again"] = False
            if not allowed():
                break
            record("preview", body)
            with lock:
                if not state["again"]:
                    state["busy"] = False
                    return
        with lock:
            state["busy"] = False

    def moved() -> None:
        with lock:
            if state["busy"]:
                state["again"] = True
                return
            state["busy"] = True
        helper = threading.Thread(target=preview_loop, daemon=True)
        helpers.append(helper)
        helper.start()

    while time.perf_counter() < deadline:
        lever = rng.choice(levers)
        key = str(lever.get("key") or lever["name"])
        drag = positions(lever, settings.get(key, float(lever["default"])), rng, rng.randint(2, 6))
        for x in drag:
            if time.perf_counter() >= deadline:
                break
            with lock:
                settings[key] = x
            moved()
            time.sleep(args.think * rng.uniform(0.5, 1.5))
        time.sleep(args.settle)  # still: the page asks for the full result
        if not allowed():
            break
        with lock:
            body = {"scenario": args.scenario, "settings": dict(settings), "mode": "full"}
        took = record("full", body)
        with shared.lock:
            shared.at_rest.append(args.settle + took)
        time.sleep(args.look * rng.uniform(0.5, 1.5))
    for helper in helpers:
        helper.join(args.timeout + 5)


def work_done(answer: dict[str, Any]) -> tuple[int, float]:
    """What the server did for a full answer: how many services the engine ran (-1: the
    whole answer was kept from an earlier request) and its own time in ms (queueing for the
    explorer's worker included, HTTP not)."""
    timings = answer.get("timings_ms") or {}
    ran = -1 if answer.get("cached") else int(timings.get("engine.simulated_services", 0))
    return ran, float(answer.get("timing_ms") or 0.0)


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
    ok = [s.seconds for s in samples if not s.error and s.status == 200]
    errors = [s for s in samples if s.error]
    replaced = [s for s in samples if s.status == 409]
    figures: dict[str, Any] = {
        "mode": args.mode,
        "sessions": args.sessions,
        "duration_s": round(wall, 1),
        "requests": len(samples),
        "errors": len(errors),
        "replaced_409": len(replaced),
        "throughput_per_s": round(len(samples) / wall, 2) if wall else 0.0,
        "p50_s": round(quantile(ok, 0.5), 3),
        "p95_s": round(quantile(ok, 0.95), 3),
        "max_s": round(max(ok), 3) if ok else None,
    }
    print(
        f"\nrequests {len(samples)} in {wall:.1f} s ({figures['throughput_per_s']}/s), "
        f"errors {len(errors)}, replaced by a newer request (409) {len(replaced)}"
    )
    good = [s for s in samples if not s.error and s.status == 200]
    kinds = sorted({s.kind for s in samples})
    for kind in kinds:
        xs = [s.seconds for s in good if s.kind == kind]
        figures[f"{kind}_n"] = len(xs)
        figures[f"{kind}_p50_s"] = round(quantile(xs, 0.5), 3)
        figures[f"{kind}_p95_s"] = round(quantile(xs, 0.95), 3)
        print(
            f"  {kind:8s} n={len(xs):5d}  p50 {quantile(xs, 0.5):.3f} s  "
            f"p95 {quantile(xs, 0.95):.3f} s  max {max(xs, default=float('nan')):.3f} s"
        )
    split = {
        "quick": [s.seconds for s in good if s.ran is not None and s.ran <= 1],
        "heavy": [s.seconds for s in good if s.ran is not None and s.ran > 1],
    }
    for part, xs in split.items():
        figures[f"full_{part}_n"] = len(xs)
        figures[f"full_{part}_p50_s"] = round(quantile(xs, 0.5), 3)
        figures[f"full_{part}_p95_s"] = round(quantile(xs, 0.95), 3)
        what = "at most one service" if part == "quick" else "several services (heavy)"
        print(
            f"    full, engine for {what}: n={len(xs)}  p50 {quantile(xs, 0.5):.3f} s  "
            f"p95 {quantile(xs, 0.95):.3f} s"
        )
    slow = {k: sum(1 for s in good if s.kind == k and s.seconds > TARGET_P95_S) for k in kinds}
    slow["full_heavy"] = sum(1 for x in split["heavy"] if x > TARGET_P95_S)
    figures["over_target"] = slow
    print(
        f"  answers over {TARGET_P95_S} s: "
        + ", ".join(f"{k} {n}" for k, n in slow.items() if k != "full_heavy")
        + f" (heavy {slow['full_heavy']} of the full ones), of {len(good)} answers: "
        f"a p95 within target allows {int(0.05 * len(good))}"
    )
    if shared.at_rest:
        figures["at_rest_p50_s"] = round(quantile(shared.at_rest, 0.5), 3)
        figures["at_rest_p95_s"] = round(quantile(shared.at_rest, 0.95), 3)
        print(
            f"  slider still -> full answer (settle {args.settle} s + full request): "
            f"p50 {figures['at_rest_p50_s']:.3f} s, p95 {figures['at_rest_p95_s']:.3f} s"
        )
    if shared.work:
        counts = {
            n: sum(1 for ran, _ in shared.work if ran == n)
            for n in sorted({w[0] for w in shared.work})
        }
        figures["full_engine_services"] = {str(n): c for n, c in counts.items()}
        said = ", ".join(
            ("kept whole" if n < 0 else f"{n} service{'s' if n != 1 else ''}") + f" {c}"
            for n, c in counts.items()
        )
        server = [ms / 1000 for _, ms in shared.work]
        print(
            f"  full answers by what the engine ran: {said}; the server's own time p50 "
            f"{quantile(server, 0.5):.3f} s, p95 {quantile(server, 0.95):.3f} s"
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


class OwnServer:
    """``--serve``: ``needsled serve`` on a free port with a fresh data folder, an account and
    the built-in example uploaded (stopped by :meth:`stop`)."""

    EMAIL, PASSWORD = "load@example.org", "a long load-test password"

    def __init__(self, replicates: int) -> None:
        import socket
        import subprocess
        import sys
        import tempfile

        self.root = Path(tempfile.mkdtemp(prefix="needsled-load-"))
        data = self.root / "data"
        secret = self.root / "password.txt"
        secret.write_text(self.PASSWORD + "\n", encoding="utf-8")
        cli = [sys.executable, "-m", "needsled"]
        add = ["users", "add", "--data-dir", str(data), "--org", "Load test"]
        add += ["--email", self.EMAIL, "--role", "commissioner", "--password-file", str(secret)]
        subprocess.run(
            [*cli, *add],
            check=True,
            capture_output=True,
        )
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (self.root / "server.log").open("w")
        serve = ["serve", "--data-dir", str(data), "--port", str(self.port)]
        serve += ["--replicates", str(replicates)]
        self.proc = subprocess.Popen(
            [*cli, *serve],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.proc.pid

    def prepare(self, args: argparse.Namespace) -> int:
        """Wait for the server, upload the example (zipped), and build its explorer."""
        import io
        import zipfile

        from needsled.example import write_example

        deadline = time.monotonic() + 120
        probe = Client(self.url, 900.0)  # building the explorer takes a minute or two
        while True:
            try:
                probe.sign_in(args, self.EMAIL, self.PASSWORD)
                break
            except (OSError, SystemExit):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(
                        f"the server did not start; see {self.root}/server.log"
                    ) from None
                time.sleep(0.5)
        folder = write_example(self.root / "example")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.iterdir()):
                zf.write(f, f"example/{f.name}")
        status, answer = probe.upload("/api/models", "example.zip", buf.getvalue())
        if status != 201 or not isinstance(answer, dict):
            raise SystemExit(f"upload failed: HTTP {status} {str(answer)[:300]}")
        model = int(answer["id"])
        t = time.perf_counter()
        status, _ = probe.call("POST", args.explore_path.format(id=model), {"mode": "preview"})
        print(f"server ready: example uploaded, explorer built in {time.perf_counter() - t:.0f} s")
        if status != 200:
            raise SystemExit(f"the explorer answered HTTP {status}")
        return model

    def stop(self) -> None:
        import shutil
        import subprocess

        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:  # still running: stop it for certain
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--pid", type=int, help="the server's process id (not with --serve)")
    parser.add_argument("--serve", action="store_true", help="start a server of its own")
    parser.add_argument("--replicates", type=int, default=200, help="with --serve")
    parser.add_argument("--children", action="store_true", help="add its child processes' RSS")
    parser.add_argument("--model", type=int, help="model id (default: the first listed)")
    parser.add_argument("--scenario", default=None, help="base scenario (default: the first)")
    parser.add_argument("--mode", choices=("page", "sequential"), default="page")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--think", type=float, default=0.3, help="seconds between positions")
    parser.add_argument("--settle", type=float, default=0.9, help="page: still before full")
    parser.add_argument("--look", type=float, default=2.0, help="page: reading a full result")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--max-requests", type=int, default=2000, help="per session")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--preview-field",
        action="store_true",
        help='sequential: send "mode": "preview" for positions passed over in a drag',
    )
    parser.add_argument("--login-path", default="/api/session")
    parser.add_argument("--session-path", default="/api/session")
    parser.add_argument("--models-path", default="/api/models")
    parser.add_argument("--levers-path", default="/api/models/{id}/levers")
    parser.add_argument("--explore-path", default="/api/models/{id}/evaluate")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if not 1 <= args.sessions <= 200 or not 0 < args.duration <= 3600:
        raise SystemExit("keep it bounded: 1 to 200 sessions, at most 3600 s")
    own = None
    if args.serve:
        own = OwnServer(args.replicates)
        args.url, args.pid = own.url, own.pid
        creds = (own.EMAIL, own.PASSWORD)
    else:
        if args.pid is None:
            raise SystemExit("give the server's --pid (for its memory), or --serve")
        creds = (
            os.environ.get("NEEDSLED_LOAD_EMAIL", ""),
            os.environ.get("NEEDSLED_LOAD_PASSWORD", ""),
        )
        if not all(creds):
            raise SystemExit(
                "set NEEDSLED_LOAD_EMAIL and NEEDSLED_LOAD_PASSWORD (the user to sign in as)"
            )
    try:
        if own is not None:
            args.model = own.prepare(args)
        run(args, creds)
    finally:
        if own is not None:
            own.stop()


def run(args: argparse.Namespace, creds: tuple[str, str]) -> None:
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
    load = os.getloadavg()
    print(
        f"needsled web load ({args.mode}): {args.sessions} sessions x {args.duration:.0f} s "
        f"against {args.url}, model {model}, {len(movable)} levers, think {args.think} s; "
        f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    shared, stop = Shared(), threading.Event()
    t0 = time.perf_counter()
    deadline = t0 + args.duration
    watcher = threading.Thread(target=watch_memory, args=(args, shared, t0, stop), daemon=True)
    watcher.start()
    target = session_page if args.mode == "page" else session
    threads = [
        threading.Thread(target=target, args=(i, args, creds, movable, model, shared, t0, deadline))
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
    load = os.getloadavg()
    figures["load_average_after"] = [round(x, 2) for x in load]
    print(f"load average after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
