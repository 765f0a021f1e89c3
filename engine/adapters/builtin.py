"""The engine's own adapters, registered through the same hook a third-party plugin uses."""

from __future__ import annotations

from engine import hookimpl
from engine.adapters.base import Adapter
from engine.adapters.http_json import HttpJsonAdapter
from engine.adapters.memory import MemoryAdapter


@hookimpl
def hisbridge_register_adapters() -> list[type[Adapter]]:
    """`http_json` for any JSON/REST endpoint; `memory`, the in-process test double."""
    return [HttpJsonAdapter, MemoryAdapter]
