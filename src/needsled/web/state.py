"""What the running application holds: its settings, store, cookie signer and caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request

from needsled.web.config import WebConfig
from needsled.web.security import Signer
from needsled.web.sliders import SliderTraffic
from needsled.web.store import Store

if TYPE_CHECKING:
    from needsled.web.cache import ModelCache
    from needsled.web.jobs import Jobs

__all__ = ["AppState", "state_of"]


@dataclass
class AppState:
    config: WebConfig
    store: Store
    signer: Signer
    models: ModelCache
    jobs: Jobs
    sliders: SliderTraffic = field(default_factory=SliderTraffic)
    large_type_default: bool = False
    extra: dict[str, object] = field(default_factory=dict)


def state_of(request: Request) -> AppState:
    app_state: AppState = request.app.state.needsled
    return app_state
