"""`hisbridge simulate pacs`: the simulated PACS (SOAP with a WSDL, REST, MLLP) until Ctrl-C.

`simulate` is a group plugins share: the first plugin to register adds it, the others add
their system to it.
"""

from __future__ import annotations

import asyncio
import contextlib

import click

from engine.cli import simulate_group


@click.command("pacs")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8091, show_default=True, help="HTTP port (SOAP, REST); 0 picks one")
@click.option("--hl7-port", type=int, default=2576, show_default=True, help="MLLP port for ORM^O01; 0 picks one")
def simulate_pacs(host: str, port: int, hl7_port: int) -> None:
    """A PACS taking exam orders over SOAP (WSDL at /ExamOrderService?wsdl), REST (/api) and
    HL7 ORM^O01 over MLLP; faults are injected with POST /_control/faults."""
    from plugins.pacs.simulator.server import serve  # lazily: only this command needs uvicorn

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, port, hl7_port))


def register(cli: click.Group) -> None:
    simulate_group(cli).add_command(simulate_pacs)


__all__ = ["register", "simulate_pacs"]
