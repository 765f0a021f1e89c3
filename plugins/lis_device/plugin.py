"""The lis_device plugin: lab analysers over HL7 v2 (MLLP) and ASTM E1381/E1394.

Registered through the `hisbridge.plugins` entry point like any third-party plugin.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import click
import yaml

from engine import hookimpl
from engine.adapters.base import Adapter
from engine.attribution.loader import parse_rules
from engine.attribution.rules import FaultRule
from engine.formats.base import PayloadFormat
from engine.sources import Source
from plugins.lis_device.astm.serial_port import AstmSerial
from plugins.lis_device.astm.source import AstmTcpClient, AstmTcpServer
from plugins.lis_device.formats import AstmFormat, Hl7Format
from plugins.lis_device.lis_delivery import LisHttpAdapter
from plugins.lis_device.lis_table import LisTableAdapter
from plugins.lis_device.mllp_source import MllpLisListener

if TYPE_CHECKING:
    from engine.demo.acts import DemoAct


def fault_rules() -> list[FaultRule]:
    """The rules shipped in plugins/lis_device/rules.yaml, validated by the engine's loader."""
    text = resources.files("plugins.lis_device").joinpath("rules.yaml").read_text(encoding="utf-8")
    return parse_rules(yaml.safe_load(text), source="plugins/lis_device/rules.yaml")


@hookimpl
def hisbridge_register_formats() -> list[PayloadFormat]:
    return [Hl7Format(), AstmFormat()]


@hookimpl
def hisbridge_register_sources() -> list[type[Source]]:
    return [AstmTcpServer, AstmTcpClient, AstmSerial, MllpLisListener]


@hookimpl
def hisbridge_register_commands(cli: click.Group) -> None:
    from plugins.lis_device.simulator.cli import register  # lazily: only the CLI needs it

    register(cli)


@hookimpl
def hisbridge_register_adapters() -> list[type[Adapter]]:
    return [LisHttpAdapter, LisTableAdapter]


@hookimpl
def hisbridge_register_fault_rules() -> list[FaultRule]:
    return fault_rules()


@hookimpl
def hisbridge_register_demo_acts() -> list[type[DemoAct]]:
    from plugins.lis_device.demo_act import LabAnalysersAct  # lazily: only the demo needs it

    return [LabAnalysersAct]
