"""A HiGHS model that does not print HiGHS's banner into the user's output.

HiGHS writes "Running HiGHS ..." to standard output (file descriptor 1, from C++) the first
time a ``Highs`` object is made in a process, before any option can turn it off. needsled's
commands print their own output there, so the first object is made with descriptor 1 pointed
at /dev/null for that moment; later objects print nothing once ``output_flag`` is off.
"""

from __future__ import annotations

import os
import sys
import threading

import highspy

__all__ = ["quiet_highs"]

_lock = threading.Lock()
_banner_shown = False


def quiet_highs() -> highspy.Highs:
    """A new ``highspy.Highs`` with its output off (the banner swallowed the first time)."""
    global _banner_shown
    with _lock:
        if _banner_shown:
            h = highspy.Highs()  # type: ignore[no-untyped-call]
        else:
            sys.stdout.flush()
            saved = os.dup(1)
            try:
                with open(os.devnull, "wb") as null:
                    os.dup2(null.fileno(), 1)
                    try:
                        h = highspy.Highs()  # type: ignore[no-untyped-call]
                    finally:
                        os.dup2(saved, 1)
            finally:
                os.close(saved)
            _banner_shown = True
    h.setOptionValue("output_flag", False)
    return h
