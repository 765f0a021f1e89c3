"""The yibao plugin's hooks: its adapter, its 故障责任清单 (rules.yaml) and its API route."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import yaml

from engine import hookimpl
from engine.adapters.base import Adapter
from engine.attribution.loader import parse_rules
from engine.attribution.rules import FaultRule
from plugins.yibao.adapter import YibaoAdapter

if TYPE_CHECKING:
    import click
    from starlette.routing import BaseRoute

    from engine.demo.acts import DemoAct
    from engine.runtime import Engine


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


@hookimpl
def hisbridge_register_routes(engine: Engine) -> list[BaseRoute]:
    from plugins.yibao.routes import (
        yibao_routes,  # lazily: engine.api imports the runtime, which loads plugins
    )

    return yibao_routes(engine)


@hookimpl
def hisbridge_register_commands(cli: click.Group) -> None:
    from engine.cli import simulate_group
    from plugins.yibao.cli import yibao_group  # lazily: only the CLI needs it
    from plugins.yibao.simulator.command import simulate_yibao

    cli.add_command(yibao_group)
    simulate_group(cli).add_command(simulate_yibao)


@hookimpl
def hisbridge_register_demo_acts() -> list[type[DemoAct]]:
    from plugins.yibao.demo_act import YibaoAct  # lazily: only the demo needs it

    return [YibaoAct]
