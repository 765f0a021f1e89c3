"""The e_invoice plugin's hooks: its adapter, its 故障责任清单 (rules.yaml), the HIS polling
route, and the callback notifier registered at start-up when a destination configures one."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import yaml

from engine import hookimpl
from engine.adapters.base import Adapter
from engine.attribution.loader import parse_rules
from engine.attribution.rules import FaultRule
from plugins.e_invoice.adapter import EInvoiceAdapter
from plugins.e_invoice.callbacks import InvoiceCallbacks

if TYPE_CHECKING:
    import click
    from starlette.routing import BaseRoute

    from engine.demo.acts import DemoAct
    from engine.runtime import Engine


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


@hookimpl
def hisbridge_register_routes(engine: Engine) -> list[BaseRoute]:
    from plugins.e_invoice.routes import e_invoice_routes  # lazily: only the API needs it

    return e_invoice_routes(engine)


@hookimpl
def hisbridge_startup(engine: Engine) -> None:
    callbacks = InvoiceCallbacks.for_engine(engine)
    if callbacks is not None:
        engine.pm.register(callbacks, name="e_invoice.callbacks")


@hookimpl
def hisbridge_register_commands(cli: click.Group) -> None:
    from engine.cli import simulate_group
    from plugins.e_invoice.cli import e_invoice_group, simulate_e_invoice  # lazily: CLI only

    cli.add_command(e_invoice_group)
    simulate_group(cli).add_command(simulate_e_invoice)


@hookimpl
def hisbridge_register_demo_acts() -> list[type[DemoAct]]:
    from plugins.e_invoice.demo_act import EInvoiceAct  # lazily: only the demo needs it

    return [EInvoiceAct]
