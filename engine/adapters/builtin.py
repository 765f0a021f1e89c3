"""The engine's own adapters, registered like any plugin's."""

from __future__ import annotations

from engine import hookimpl
from engine.adapters.base import Adapter
from engine.adapters.http_json import HttpJsonAdapter


@hookimpl
def hisbridge_register_adapters() -> list[type[Adapter]]:
    return [HttpJsonAdapter]
