"""Meta-tests keeping the hook contract and its tests in step: every hook is documented,
fully typed, implemented by the probe plugin below and called with keyword arguments."""

from __future__ import annotations

import inspect
import types
from typing import Any

import click
import pytest
from starlette.routing import Route

from engine import hookimpl, hookspecs
from engine.adapters.base import Adapter, Wire
from engine.attribution.rules import FaultRule
from engine.catalogue import Catalogue
from engine.demo.acts import DemoAct, DemoStage
from engine.formats.base import PayloadFormat
from engine.message import Party, Payload
from engine.plugin_manager import create_plugin_manager
from engine.processors import Processor
from engine.sources import Source

HOOK_NAMES = sorted(
    name
    for name, value in vars(hookspecs).items()
    if name.startswith("hisbridge_") and inspect.isfunction(value)
)


class ProbeAdapter(Adapter):
    name = "probe_adapter"

    async def send(self, request: Payload, wire: Wire) -> Payload:
        return request


class ProbeSource(Source):
    kind = "probe_source"

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""


class ProbeProcessor(Processor):
    name = "probe_processor"

    def process(self, payload: Payload) -> Payload:
        return payload


class ProbeAct(DemoAct):
    name = "probe_act"
    title = "probe"

    async def run(self, stage: DemoStage) -> bool:
        return True


class ProbeFormat(PayloadFormat):
    name = "probe_format"

    def flatten(self, body: bytes) -> list[tuple[str, str]]:
        return [("body", body.decode())]


class ProbePlugin:
    """Implements every hook and records the keyword arguments each call received."""

    __name__ = "probe"

    def __init__(self) -> None:
        self.calls: dict[str, dict[str, Any]] = {}

    @hookimpl
    def hisbridge_register_adapters(self) -> list[type[Adapter]]:
        self.calls["hisbridge_register_adapters"] = {}
        return [ProbeAdapter]

    @hookimpl
    def hisbridge_register_sources(self) -> list[type[Source]]:
        self.calls["hisbridge_register_sources"] = {}
        return [ProbeSource]

    @hookimpl
    def hisbridge_register_processors(self) -> list[type[Processor]]:
        self.calls["hisbridge_register_processors"] = {}
        return [ProbeProcessor]

    @hookimpl
    def hisbridge_register_fault_rules(self) -> list[FaultRule]:
        self.calls["hisbridge_register_fault_rules"] = {}
        return [FaultRule(id="probe.rule", party=Party.HIS, reason="probe", match={})]

    @hookimpl
    def hisbridge_register_formats(self) -> list[PayloadFormat]:
        self.calls["hisbridge_register_formats"] = {}
        return [ProbeFormat()]

    @hookimpl
    def hisbridge_register_commands(self, cli: click.Group) -> None:
        self.calls["hisbridge_register_commands"] = {"cli": cli}

    @hookimpl
    def hisbridge_register_demo_acts(self) -> list[type[DemoAct]]:
        self.calls["hisbridge_register_demo_acts"] = {}
        return [ProbeAct]

    @hookimpl
    def hisbridge_register_routes(self, engine: object) -> list[Route]:
        self.calls["hisbridge_register_routes"] = {"engine": engine}
        return []

    @hookimpl
    def hisbridge_startup(self, engine: object) -> None:
        self.calls["hisbridge_startup"] = {"engine": engine}

    @hookimpl
    def hisbridge_shutdown(self, engine: object) -> None:
        self.calls["hisbridge_shutdown"] = {"engine": engine}

    @hookimpl
    def hisbridge_message_finished(
        self,
        message_id: str,
        channel: str,
        destination: str,
        status: str,
        verdict: dict[str, Any] | None,
    ) -> None:
        self.calls["hisbridge_message_finished"] = {"message_id": message_id, "status": status}


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hook_has_a_docstring_and_full_annotations(name: str) -> None:
    spec = getattr(hookspecs, name)
    assert spec.__doc__ and len(spec.__doc__.split()) >= 5, f"{name} needs a docstring"
    signature = inspect.signature(spec)
    assert signature.return_annotation is not inspect.Signature.empty
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, f"{name}({parameter.name})"


def test_the_probe_plugin_implements_every_hook() -> None:
    implemented = sorted(name for name in dir(ProbePlugin) if name.startswith("hisbridge_"))
    assert implemented == HOOK_NAMES, "add the new hook to ProbePlugin and exercise it below"


def test_every_hook_reaches_the_probe_with_keyword_arguments() -> None:
    probe = ProbePlugin()
    pm = create_plugin_manager(load_entry_points=False, extra_plugins=[probe])
    engine = types.SimpleNamespace(name="engine stand-in")

    catalogue = Catalogue.build(pm)
    pm.hook.hisbridge_register_commands(cli=click.Group("probe"))
    pm.hook.hisbridge_register_routes(engine=engine)
    pm.hook.hisbridge_startup(engine=engine)
    pm.hook.hisbridge_shutdown(engine=engine)
    pm.hook.hisbridge_message_finished(
        message_id="m1", channel="c", destination="d", status="replied", verdict=None
    )

    assert sorted(probe.calls) == HOOK_NAMES
    assert catalogue.contributed_by["adapters"]["probe_adapter"] == "probe"
    assert catalogue.contributed_by["sources"]["probe_source"] == "probe"
    assert catalogue.contributed_by["processors"]["probe_processor"] == "probe"
    assert catalogue.contributed_by["formats"]["probe_format"] == "probe"
    assert catalogue.contributed_by["fault_rules"]["probe.rule"] == "probe"
    assert catalogue.contributed_by["demo_acts"]["probe_act"] == "probe"
    assert probe.calls["hisbridge_startup"]["engine"] is engine
