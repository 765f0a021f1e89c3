"""The yibao plugin's hooks: its adapter and its 故障责任清单 (rules.yaml)."""

from __future__ import annotations

from importlib import resources

import yaml

from engine import hookimpl
from engine.adapters.base import Adapter
from engine.attribution.loader import parse_rules
from engine.attribution.rules import FaultRule
from plugins.yibao.adapter import YibaoAdapter


def fault_rules() -> list[FaultRule]:
    """The rules shipped in plugins/yibao/rules.yaml, validated by the engine's rule loader."""
    text = resources.files("plugins.yibao").joinpath("rules.yaml").read_text(encoding="utf-8")
    return parse_rules(yaml.safe_load(text), source="plugins/yibao/rules.yaml")


@hookimpl
def hisbridge_register_adapters() -> list[type[Adapter]]:
    return [YibaoAdapter]


@hookimpl
def hisbridge_register_fault_rules() -> list[FaultRule]:
    return fault_rules()
