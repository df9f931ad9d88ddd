"""Loaded models and their explorers, kept in memory for the pages that use them.

A stored model is unpacked once into ``DATA_DIR/cache/models/<id>-<sha>/`` (a rebuildable
copy: the store keeps the upload) and loaded; its :class:`~needsled.web.explore.Explorer`
(which holds the crime forecast and the parameter draws, so that each slider move is quick) is
built once and kept. At most ``size`` explorers are kept, least recently used first out. A
lock per model makes concurrent first requests build it once.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from needsled.model import Model
from needsled.web.errors import Unavailable
from needsled.web.jobs import Lane
from needsled.web.uploads import unpack

if TYPE_CHECKING:
    from needsled.web.explore import Explorer

__all__ = ["ModelCache", "explorer_class"]

log = logging.getLogger("needsled.web")


def explorer_class() -> type[Explorer]:
    """The scenario-evaluation service, or 503 with a plain message while it is missing."""
    try:
        from needsled.web.explore import Explorer
    except ImportError as exc:
        raise Unavailable(
            "The scenario explorer is not installed on this server yet "
            f"({exc}); models, scenarios, the optimiser and reports still work."
        ) from None
    return Explorer


class ModelCache:
    def __init__(self, data_dir: Path, size: int, replicates: int, seed: int) -> None:
        self.root = data_dir / "cache" / "models"
        self.size = max(1, size)
        self.replicates = replicates
        self.seed = seed
        self._models: OrderedDict[tuple[int, str], Model] = OrderedDict()
        self._explorers: OrderedDict[tuple[int, str], Any] = OrderedDict()
        self._locks: dict[tuple[str, int, str], threading.Lock] = {}
        self._guard = threading.Lock()
        self._warmer = Lane("needsled-warm")

    def _lock(self, kind: str, key: tuple[int, str]) -> threading.Lock:
        """One lock per model for loading it and another for building its explorer, so that
        a page needing only the model does not wait for an explorer being built."""
        with self._guard:
            return self._locks.setdefault((kind, *key), threading.Lock())

    def folder(self, model_id: int, sha256: str) -> Path:
        return self.root / f"{model_id}-{sha256[:16]}"

    def model(self, model_id: int, sha256: str, name: str, archive: Any) -> Model:
        """The loaded model. ``archive`` is called for the bytes only when not unpacked yet."""
        from needsled.io.load import load_model

        key = (model_id, sha256)
        with self._lock("model", key):
            with self._guard:
                if key in self._models:
                    self._models.move_to_end(key)
                    return self._models[key]
            folder = self.folder(model_id, sha256)
            if not folder.is_dir():
                unpack(archive(), folder)
            model = dataclasses.replace(load_model(folder), name=name)
            with self._guard:
                self._models[key] = model
                while len(self._models) > self.size * 2:
                    self._models.popitem(last=False)
            return model

    def explorer(self, model_id: int, sha256: str, name: str, archive: Any) -> Explorer:
        cls = explorer_class()
        key = (model_id, sha256)
        with self._lock("explorer", key):
            with self._guard:
                if key in self._explorers:
                    self._explorers.move_to_end(key)
                    found: Explorer = self._explorers[key]
                    return found
            model = self.model(model_id, sha256, name, archive)
            built = cls(model, replicates=self.replicates, seed=self.seed)
            with self._guard:
                self._explorers[key] = built
                while len(self._explorers) > self.size:
                    self._explorers.popitem(last=False)
            return built

    def levers(self, model_id: int, sha256: str, name: str, archive: Any) -> list[dict[str, Any]]:
        """The explorer's levers, without waiting for the explorer when it is not built yet
        (building it takes from seconds to a minute: the forecast, every scenario, and the
        first time in a process, compiling the engine)."""
        key = (model_id, sha256)
        with self._guard:
            built = self._explorers.get(key)
        if built is None:
            try:
                module = importlib.import_module("needsled.web.explore")
            except ImportError:
                module = None
            specs = getattr(module, "lever_specs", None)
            if specs is not None:
                model = self.model(model_id, sha256, name, archive)
                return [s.as_dict() for s in specs(model)]
            built = self.explorer(model_id, sha256, name, archive)
        found: list[dict[str, Any]] = built.levers()
        return found

    def ready(self, model_id: int, sha256: str) -> bool:
        """Whether the model's explorer is built (its page then answers at once)."""
        with self._guard:
            return (model_id, sha256) in self._explorers

    def warm(self, model_id: int, sha256: str, name: str, archive: Any) -> Future[Any] | None:
        """Start building the model's explorer in the background (after an upload, or when
        its page is opened), so that the explorer page is quick when it is asked for."""
        with self._guard:
            if (model_id, sha256) in self._explorers:
                return None
        try:
            explorer_class()
        except Unavailable:
            return None

        def build() -> None:
            try:
                self.explorer(model_id, sha256, name, archive)
            except Exception:  # the page will say what is wrong when it asks
                log.exception("could not prepare the explorer of model %s", model_id)

        return self._warmer.submit(build)

    def shutdown(self) -> None:
        self._warmer.shutdown()

    def forget(self, model_id: int) -> None:
        """Drop a deleted model from memory (its unpacked folder is removed by the caller)."""
        with self._guard:
            for cache in (self._models, self._explorers):
                for key in [k for k in cache if k[0] == model_id]:
                    del cache[key]
            for lock_key in [k for k in self._locks if k[1] == model_id]:
                del self._locks[lock_key]
