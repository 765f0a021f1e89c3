"""The engine's MLLP source and destination, registered like any plugin's."""

from __future__ import annotations

from engine import hookimpl
from engine.adapters.base import Adapter
from engine.mllp.listener import MllpListener
from engine.mllp.sender import MllpSender
from engine.sources import Source


@hookimpl
def hisbridge_register_sources() -> list[type[Source]]:
    return [MllpListener]


@hookimpl
def hisbridge_register_adapters() -> list[type[Adapter]]:
    return [MllpSender]
