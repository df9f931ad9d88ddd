"""Files written whole or not at all: each goes to a temporary file beside its target, which
is then renamed over it (``os.replace``, atomic on one file system), so a reader never sees a
half-written file and a failed write leaves the old one as it was."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["temporary", "write_atomic", "write_text_atomic"]


def temporary(path: Path, *, keep_suffix: bool = False) -> Path:
    """The temporary file beside ``path``: ``.name.tmp``, or ``.stem.tmp.suffix`` for writers
    that go by the suffix (``keep_suffix``)."""
    if keep_suffix:
        return path.with_name(f".{path.stem}.tmp{path.suffix}")
    return path.with_name(f".{path.name}.tmp")


def write_atomic(
    path: str | Path, write: Callable[[Path], object], *, keep_suffix: bool = False
) -> Path:
    """``write(tmp)`` to the temporary file, then rename it over ``path``; returns ``path``."""
    path = Path(path)
    tmp = temporary(path, keep_suffix=keep_suffix)
    write(tmp)
    os.replace(tmp, path)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """``text`` (UTF-8) to ``path``, whole or not at all."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
