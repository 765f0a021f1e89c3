"""The drug_trace plugin's hooks: its adapters, the uploads (drug_trace) and the 码上放心
relation query (drug_trace_relation). Upload errors are matched by the yibao fault rules,
since the yibao client marks them `centre: yibao`."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import yaml

from engine import hookimpl
from engine.adapters.base import Adapter
from engine.attribution.loader import parse_rules
from engine.attribution.rules import FaultRule
from plugins.drug_trace.adapter import DrugTraceAdapter
from plugins.drug_trace.relation_adapter import DrugTraceRelationAdapter

if TYPE_CHECKING:
    import click

    from engine.demo.acts import DemoAct


@hookimpl
def hisbridge_register_adapters() -> list[type[Adapter]]:
    return [DrugTraceAdapter, DrugTraceRelationAdapter]


def fault_rules() -> list[FaultRule]:
    """The rules in plugins/drug_trace/rules.yaml, validated by the engine's rule loader."""
    text = resources.files("plugins.drug_trace").joinpath("rules.yaml").read_text(encoding="utf-8")
    return parse_rules(yaml.safe_load(text), source="plugins/drug_trace/rules.yaml")


@hookimpl
def hisbridge_register_fault_rules() -> list[FaultRule]:
    return fault_rules()


@hookimpl
def hisbridge_register_commands(cli: click.Group) -> None:
    from plugins.drug_trace.simulator.cli import register  # lazily: CLI only
    from plugins.drug_trace.status import drug_trace_group

    cli.add_command(drug_trace_group)
    register(cli)


@hookimpl
def hisbridge_register_demo_acts() -> list[type[DemoAct]]:
    from plugins.drug_trace.demo_act import DrugTraceAct  # lazily: only the demo needs it

    return [DrugTraceAct]
