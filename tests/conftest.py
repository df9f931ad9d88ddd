"""Shared pytest fixtures.

``shared_data``: the directory of real published data (``/work/shared/data`` next to the
repo, or ``$NEEDSLED_SHARED_DATA``). Tests that use it are skipped, with the reason, when it
is absent, unless ``NEEDSLED_REQUIRE_REAL_DATA=1`` (CI), in which case they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to the shared real-data directory (see module docstring)."""
    configured = os.environ.get("NEEDSLED_SHARED_DATA")
    root = Path(configured) if configured else DEFAULT_SHARED_DATA
    if not root.is_dir():
        where = "$NEEDSLED_SHARED_DATA" if configured else "the default location"
        reason = (
            f"real shared data not found at {root} ({where}); set NEEDSLED_SHARED_DATA to "
            "the directory holding README.md and the published files"
        )
        if os.environ.get("NEEDSLED_REQUIRE_REAL_DATA") == "1":
            pytest.fail(f"NEEDSLED_REQUIRE_REAL_DATA=1 but {reason}")
        pytest.skip(reason)
    return root
