"""Comparing Vega-Lite specs whose one inline dataset may be named differently.

Altair names a dataset by a hash of its rows' JSON; the explorer names it by a faster hash
of the same rows. The name is only a key within the spec, so two specs are the same chart
when they are equal once the dataset is given one name in both.
"""

from __future__ import annotations

import json
import re
from typing import Any

NAME = re.compile(r"data-[0-9a-f]{32}|empty")


def named_alike(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with its one dataset, and every reference to it, named "data"."""
    (name,) = spec["datasets"]
    assert NAME.fullmatch(name), name
    text = json.dumps(spec)
    assert text.count(json.dumps(name)) >= 2, "the dataset is named and used"
    return dict(json.loads(text.replace(json.dumps(name), '"data"')))
