"""A guard for launching Numba's parallel kernels from more than one thread.

The kernels (``needsled.flow``, ``needsled.stats``) release the interpreter lock while they
run, so a web server's other threads (a preview, another request, a report in the
background) go on meanwhile. Numba's OpenMP and TBB threading layers take parallel launches
from several threads at once; its fallback "workqueue" layer (used when neither library is
there) aborts the process on a second concurrent launch, so there, and before the first
launch has chosen a layer, launches wait for one another.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from numba.np.ufunc.parallel import threading_layer

__all__ = ["launch_guard"]

_LOCK = threading.RLock()
_CONCURRENT = ("omp", "tbb")


def launch_guard() -> contextlib.AbstractContextManager[Any]:
    """Hold this around a call of a parallel kernel (see the module docstring)."""
    try:
        layer = str(threading_layer())  # type: ignore[no-untyped-call]
    except ValueError:  # no parallel launch yet
        return _LOCK
    return contextlib.nullcontext() if layer in _CONCURRENT else _LOCK
