"""The e_invoice plugin's hooks: its adapter and its 故障责任清单 (rules.yaml)."""

from __future__ import annotations

from importlib import resources

import yaml

from engine import hookimpl
from engine.adapters.base import Adapter
from engine.attribution.loader import parse_rules
from engine.attribution.rules import FaultRule
from plugins.e_invoice.adapter import EInvoiceAdapter


def fault_rules() -> list[FaultRule]:
    """The rules in plugins/e_invoice/rules.yaml, validated by the engine's rule loader."""
    text = resources.files("plugins.e_invoice").joinpath("rules.yaml").read_text(encoding="utf-8")
    return parse_rules(yaml.safe_load(text), source="plugins/e_invoice/rules.yaml")


@hookimpl
def hisbridge_register_adapters() -> list[type[Adapter]]:
    return [EInvoiceAdapter]


@hookimpl
def hisbridge_register_fault_rules() -> list[FaultRule]:
    return fault_rules()
