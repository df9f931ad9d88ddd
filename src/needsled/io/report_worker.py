"""A helper process for :func:`needsled.io.report_out.write_report`.

Writing the workbook (xlsxwriter) and drawing charts (vl-convert) both hold the interpreter
lock, so a second process is the only way to use a second core for them. The helper is a
plain Python child running :func:`main` (not ``multiprocessing``, which re-runs the caller's
main script under ``spawn`` and copies threads half-way under ``fork``): it reads jobs from
its stdin, runs them one after another and writes each result, or the exception it raised,
to its stdout. Messages are pickles with a length in front; both ends are this module, so
nothing untrusted is unpickled.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

__all__ = ["Helper", "HelperStoppedError", "main"]


class HelperStoppedError(RuntimeError):
    """The helper process ended before it answered (the caller can do the job itself)."""


_HEADER = struct.Struct("<Q")


def _send(stream: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next message, or None when the other end closed the pipe (also part-way through
    a message, as when the process writing it was killed)."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def _job(name: str) -> Callable[..., Any]:
    """The helper's jobs, imported when first asked for."""
    if name == "bundle":
        from needsled.report import vega_bundle

        return vega_bundle
    if name == "excel":
        from needsled.io.excel_out import write_excel

        return write_excel
    if name == "png":
        from needsled.io.png_out import encode_png_file

        return encode_png_file
    raise ValueError(f"no job named {name!r}")


def main() -> None:
    """Run jobs from stdin until it closes (the helper process's entry point)."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the replies
    requests = sys.stdin.buffer
    while (message := _receive(requests)) is not None:
        number, name, args, kwargs = message
        try:
            reply = (number, True, _job(name)(*args, **kwargs))
        except Exception as exc:
            reply = (number, False, exc)
        _send(replies, reply)


class Helper:
    """The parent's end: ``submit`` a job by name, get a Future. A helper that dies fails
    its pending futures, and any submitted later, with HelperStoppedError."""

    def __init__(self) -> None:
        # the child finds needsled as this process did; if only a path added at run time (a
        # notebook's, say) has it, the child adds that path too
        here = str(Path(__file__).resolve().parents[2])
        code = (
            "import importlib.util, sys\n"
            f"importlib.util.find_spec('needsled') or sys.path.append({here!r})\n"
            "from needsled.io.report_worker import main\n"
            "main()\n"
        )
        self._process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._pending: dict[int, Future[Any]] = {}
        self._stopped = False
        self._lock = threading.Lock()
        self._count = 0
        # jobs go out through a thread, so that submitting never waits for the helper to
        # read (it reads the next job only when it has finished the last)
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._writer.start()
        self._reader.start()

    def _write(self) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            while (data := self._outbox.get()) is not None:
                stdin.write(_HEADER.pack(len(data)))
                stdin.write(data)
                stdin.flush()
        except OSError:  # the helper stopped; the reader fails what is pending
            pass
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _read(self) -> None:
        assert self._process.stdout is not None
        try:
            while (reply := _receive(self._process.stdout)) is not None:
                number, ok, value = reply
                with self._lock:
                    future = self._pending.pop(number)
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except Exception:  # a reply that cannot be read: the helper is lost
            # (an exception that does not unpickle, say); whatever is pending must not wait
            # for ever, so it fails below and the caller does the work itself
            with contextlib.suppress(OSError):
                self._process.kill()
        with self._lock:
            left, self._pending = self._pending, {}
            self._stopped = True
        for future in left.values():
            future.set_exception(HelperStoppedError("the report's helper process stopped"))

    def submit(self, name: str, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._stopped:  # no one will answer: say so now rather than never
                future.set_exception(HelperStoppedError("the report's helper process stopped"))
                return future
            self._count += 1
            self._pending[self._count] = future
            number = self._count
        self._outbox.put(pickle.dumps((number, name, args, kwargs), pickle.HIGHEST_PROTOCOL))
        return future

    def close(self) -> None:
        """Let the helper finish what it has, then stop it."""
        self._stop(kill=False)

    def kill(self) -> None:
        """Stop the helper now (after an error in the parent)."""
        self._stop(kill=True)

    def _stop(self, *, kill: bool) -> None:
        if kill:
            self._process.kill()
        self._outbox.put(None)
        self._writer.join()
        self._process.wait()
        self._reader.join()
        if self._process.stdout is not None:
            self._process.stdout.close()


if __name__ == "__main__":
    main()
