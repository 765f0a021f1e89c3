"""The lis_device plugin: lab analysers over HL7 v2 (MLLP) and ASTM E1381/E1394.

Registered through the `hisbridge.plugins` entry point like any third-party plugin.
"""

from __future__ import annotations

import click

from engine import hookimpl
from engine.formats.base import PayloadFormat
from engine.sources import Source
from plugins.lis_device.astm.serial_port import AstmSerial
from plugins.lis_device.astm.source import AstmTcpClient, AstmTcpServer
from plugins.lis_device.formats import AstmFormat, Hl7Format
from plugins.lis_device.mllp_source import MllpLisListener


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
