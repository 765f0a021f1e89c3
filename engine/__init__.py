"""hisbridge engine core. Plugins import `hookimpl` from here."""

import pluggy

from engine.hookspecs import PROJECT

hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["hookimpl"]
