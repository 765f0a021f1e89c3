"""The catalogue: what every registered plugin contributes, keyed by name, built once.

Each registration hook is called plugin by plugin (not through the fan-out relay) so the
catalogue knows which plugin contributed what; a name claimed by two plugins is a PluginError
naming both. `plugins_report()` is the data behind `hisbridge plugins`.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy
import structlog

from engine.adapters.base import Adapter
from engine.attribution.rules import FaultRule
from engine.demo.acts import DemoAct
from engine.errors import PluginError
from engine.formats.base import PayloadFormat
from engine.plugin_manager import BUILTIN_PLUGINS
from engine.processors import Processor
from engine.sources import Source

log = structlog.get_logger(__name__)

KINDS = ("adapters", "sources", "processors", "formats", "fault_rules", "demo_acts")


@dataclass
class Catalogue:
    """Everything the registered plugins contribute, keyed by name; built once at start-up
    and read-only afterwards. Messages never go through the hook relay, only through this."""

    adapters: dict[str, type[Adapter]] = field(default_factory=dict)
    sources: dict[str, type[Source]] = field(default_factory=dict)
    processors: dict[str, type[Processor]] = field(default_factory=dict)
    formats: dict[str, PayloadFormat] = field(default_factory=dict)
    fault_rules: list[FaultRule] = field(default_factory=list)
    demo_acts: dict[str, type[DemoAct]] = field(default_factory=dict)
    contributed_by: dict[str, dict[str, str]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )
    """kind ("adapters", "sources", ...) → item name (fault rules: rule id) → plugin name."""

    @classmethod
    def build(cls, pm: pluggy.PluginManager) -> Catalogue:
        """Call every registration hook once and key the results by name."""
        catalogue = cls()
        hook = pm.hook
        catalogue._collect(
            "adapters",
            hook.hisbridge_register_adapters,
            _class_key(Adapter, "name"),
            catalogue.adapters,
        )
        catalogue._collect(
            "sources",
            hook.hisbridge_register_sources,
            _class_key(Source, "kind"),
            catalogue.sources,
        )
        catalogue._collect(
            "processors",
            hook.hisbridge_register_processors,
            _class_key(Processor, "name"),
            catalogue.processors,
        )
        catalogue._collect(
            "formats", hook.hisbridge_register_formats, _format_key, catalogue.formats
        )
        catalogue._collect(
            "demo_acts", hook.hisbridge_register_demo_acts, _class_key(DemoAct, "name"), catalogue.demo_acts
        )
        rules: dict[str, FaultRule] = {}
        catalogue._collect("fault_rules", hook.hisbridge_register_fault_rules, _rule_key, rules)
        catalogue.fault_rules = sorted(rules.values(), key=lambda rule: rule.priority)
        log.debug(
            "catalogue built",
            adapters=sorted(catalogue.adapters),
            sources=sorted(catalogue.sources),
            processors=sorted(catalogue.processors),
        )
        return catalogue

    def _collect(
        self,
        kind: str,
        hook_caller: pluggy.HookCaller,
        key_of: Callable[[Any], str],
        into: dict[str, Any],
    ) -> None:
        origins = self.contributed_by[kind]
        # get_hookimpls() is in registration order, so a clash names the earlier plugin first.
        for impl in hook_caller.get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                continue
            try:
                contributed = impl.function()
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name}: {hook_caller.name} raised {exc!r}"
                ) from exc
            if contributed is None:
                continue
            if not isinstance(contributed, (list, tuple)):
                raise PluginError(
                    f"plugin {impl.plugin_name}: {hook_caller.name} must return a list, "
                    f"got {type(contributed).__name__}"
                )
            for item in contributed:
                try:
                    key = key_of(item)
                except TypeError as exc:
                    raise PluginError(
                        f"plugin {impl.plugin_name}: {hook_caller.name}: {exc}"
                    ) from None
                if key in origins:
                    raise PluginError(
                        f"{kind[:-1].replace('_', ' ')} {key!r} is registered by two plugins: "
                        f"{origins[key]} and {impl.plugin_name}"
                    )
                origins[key] = impl.plugin_name
                into[key] = item


def _class_key(base: type, attribute: str) -> Callable[[Any], str]:
    def key_of(item: Any) -> str:
        if not (isinstance(item, type) and issubclass(item, base)):
            raise TypeError(f"{item!r} is not a subclass of {base.__module__}.{base.__name__}")
        value = getattr(item, attribute, None)
        if not isinstance(value, str) or not value:
            raise TypeError(f"{item.__name__} has no {attribute!r} class attribute")
        return value

    return key_of


def _format_key(item: Any) -> str:
    if not isinstance(item, PayloadFormat):
        raise TypeError(f"{item!r} is not a PayloadFormat instance")
    return item.name


def _rule_key(item: Any) -> str:
    if not isinstance(item, FaultRule):
        raise TypeError(f"{item!r} is not a FaultRule")
    return item.id


def hisbridge_version() -> str:
    try:
        return importlib.metadata.version("hisbridge")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def plugins_report(pm: pluggy.PluginManager, catalogue: Catalogue) -> list[dict[str, Any]]:
    """One entry per registered plugin: name, distribution and version, hooks, contributions.

    Built-in modules report the hisbridge version; entry-point plugins their distribution's;
    plugins registered by hand (tests) have no distribution and version None.
    """
    distributions = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    report = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda pair: pair[0]):
        if plugin is None:  # blocked
            continue
        dist = distributions.get(id(plugin))
        if dist is not None:
            distribution, version = dist.metadata["Name"], dist.version
        elif name in BUILTIN_PLUGINS:
            distribution, version = "hisbridge", hisbridge_version()
        else:
            distribution, version = None, None
        contributions = {
            kind: sorted(
                item for item, origin in catalogue.contributed_by[kind].items() if origin == name
            )
            for kind in KINDS
        }
        report.append(
            {
                "name": name,
                "distribution": distribution,
                "version": version,
                "builtin": name in BUILTIN_PLUGINS,
                "hooks": sorted(caller.name for caller in pm.get_hookcallers(plugin) or ()),
                **contributions,
            }
        )
    return report
