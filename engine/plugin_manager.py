"""The one factory that builds a plugin manager; nothing creates one at import time.

Order matters and follows pytest/datasette: add the hook specs, register the built-in plugin
modules, block what the caller disabled, load third-party (and bundled) plugins from the
`hisbridge.plugins` entry-point group, then `check_pending()` so a misspelled hook name fails
at start-up instead of silently never being called.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Iterable

import pluggy
import structlog

from engine import hookspecs
from engine.errors import PluginError

log = structlog.get_logger(__name__)

ENTRY_POINT_GROUP = "hisbridge.plugins"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "engine.adapters.builtin",
    "engine.formats.builtin",
    "engine.attribution.builtin",
    "engine.processors_builtin",
    "engine.mllp.builtin",
    "engine.demo.builtin",
)
"""Modules that are plugins shipped inside the engine, registered under their module name.
This tuple is the only place to add or remove one."""


def create_plugin_manager(
    *,
    disabled: Iterable[str] = (),
    load_entry_points: bool = True,
    extra_plugins: Iterable[object] = (),
) -> pluggy.PluginManager:
    """A fresh plugin manager with every hook implementation validated.

    `disabled` names plugins (entry-point names or built-in module names) that must not be
    registered. `extra_plugins` are registered after the built-ins (tests use this for
    throwaway plugins). Raises PluginError naming the plugin at fault.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        _register(pm, importlib.import_module(module_name), module_name)
    for plugin in extra_plugins:
        _register(pm, plugin, None)
    disabled = set(disabled)
    known = {name for name, _ in pm.list_name_plugin()}
    for name in disabled:
        pm.set_blocked(name)
    if load_entry_points:
        known |= _load_entry_points(pm)
        if disabled - known:
            log.warning("disabled plugins are not installed", plugins=sorted(disabled - known))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {_plugin_name(pm, exc.plugin)}: {exc}") from exc
    log.debug(
        "plugins registered", plugins=sorted(n for n, p in pm.list_name_plugin() if p is not None)
    )
    return pm


def _register(pm: pluggy.PluginManager, plugin: object, name: str | None) -> None:
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(
            f"plugin {name or _describe(plugin)} cannot be registered: {exc}"
        ) from exc


def _load_entry_points(pm: pluggy.PluginManager) -> set[str]:
    """Load every entry point not blocked; returns the names of all of them."""
    entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    # One name at a time, so a plugin that fails to import is named in the error.
    for entry_point in entry_points:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=entry_point.name)
        except Exception as exc:
            origin = entry_point.dist.name if entry_point.dist else "unknown distribution"
            raise PluginError(
                f"plugin {entry_point.name} ({entry_point.value}, from {origin}) "
                f"failed to load: {exc}"
            ) from exc
    return set(entry_points.names)


def _plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    return pm.get_name(plugin) or _describe(plugin)


def _describe(plugin: object) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__name__
