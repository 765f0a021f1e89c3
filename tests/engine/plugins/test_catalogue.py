from __future__ import annotations

import types
from typing import Callable

import pytest

from engine.adapters.base import Adapter, Wire
from engine.attribution.rules import FaultRule
from engine.catalogue import Catalogue, plugins_report
from engine.errors import PluginError
from engine.formats.base import PayloadFormat
from engine.message import Delivery, Party, Payload
from engine.plugin_manager import create_plugin_manager

MakePlugin = Callable[..., types.ModuleType]


class LabAdapter(Adapter):
    name = "acme_lab"
    delivery = Delivery.ASYNC

    async def send(self, request: Payload, wire: Wire) -> Payload:
        return request


class OtherLabAdapter(LabAdapter):
    """Claims the same name from another plugin."""


class CsvFormat(PayloadFormat):
    name = "json"  # clashes with the built-in JSON format

    def flatten(self, body: bytes) -> list[tuple[str, str]]:
        return []


def build(*plugins: types.ModuleType) -> Catalogue:
    return Catalogue.build(create_plugin_manager(load_entry_points=False, extra_plugins=plugins))


def test_builtin_contributions_are_keyed_by_name() -> None:
    catalogue = build()

    assert catalogue.adapters["http_json"].name == "http_json"
    assert catalogue.processors["require_fields"].name == "require_fields"
    assert {"json", "xml", "text"} <= set(catalogue.formats)
    assert catalogue.fault_rules == sorted(catalogue.fault_rules, key=lambda rule: rule.priority)
    assert catalogue.contributed_by["processors"]["require_fields"] == "engine.processors_builtin"


def test_duplicate_adapter_name_names_both_plugins(make_plugin: MakePlugin) -> None:
    first = make_plugin("acme_one", hisbridge_register_adapters=lambda: [LabAdapter])
    second = make_plugin("acme_two", hisbridge_register_adapters=lambda: [OtherLabAdapter])

    with pytest.raises(PluginError) as raised:
        build(first, second)

    message = str(raised.value)
    assert "'acme_lab'" in message and "acme_one" in message and "acme_two" in message


def test_plugin_clashing_with_a_builtin_format_names_both(make_plugin: MakePlugin) -> None:
    clash = make_plugin("acme_formats", hisbridge_register_formats=lambda: [CsvFormat()])

    with pytest.raises(PluginError, match="engine.formats.builtin and acme_formats"):
        build(clash)


def test_duplicate_fault_rule_id_names_both_plugins(make_plugin: MakePlugin) -> None:
    rule = FaultRule(id="acme.timeout", party=Party.NETWORK, reason="r", match={"stage": "send"})
    first = make_plugin("acme_rules_a", hisbridge_register_fault_rules=lambda: [rule])
    second = make_plugin("acme_rules_b", hisbridge_register_fault_rules=lambda: [rule])

    with pytest.raises(PluginError, match="acme_rules_a and acme_rules_b"):
        build(first, second)


@pytest.mark.parametrize(
    "returned",
    [LabAdapter, ["not a class"], [PayloadFormat]],
    ids=["not-a-list", "not-a-class", "wrong-base-class"],
)
def test_malformed_registration_names_the_plugin(make_plugin: MakePlugin, returned: object) -> None:
    sloppy = make_plugin("acme_sloppy", hisbridge_register_adapters=lambda: returned)

    with pytest.raises(PluginError, match="acme_sloppy"):
        build(sloppy)


def test_registration_hook_that_raises_names_the_plugin(make_plugin: MakePlugin) -> None:
    def explode() -> list[type[Adapter]]:
        raise RuntimeError("missing vendor SDK")

    broken = make_plugin("acme_explodes", hisbridge_register_adapters=explode)

    with pytest.raises(PluginError, match="acme_explodes.*missing vendor SDK"):
        build(broken)


def test_report_lists_hooks_and_contributions_per_plugin(make_plugin: MakePlugin) -> None:
    extra = make_plugin("acme_inline", hisbridge_register_adapters=lambda: [LabAdapter])
    pm = create_plugin_manager(load_entry_points=False, extra_plugins=[extra])

    report = {entry["name"]: entry for entry in plugins_report(pm, Catalogue.build(pm))}

    assert report["acme_inline"]["adapters"] == ["acme_lab"]
    assert report["acme_inline"]["hooks"] == ["hisbridge_register_adapters"]
    assert report["acme_inline"]["version"] is None
    builtin = report["engine.processors_builtin"]
    assert builtin["distribution"] == "hisbridge" and builtin["builtin"]
    assert builtin["processors"] == ["require_fields"]
