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
@click.option("--report-hl7", metavar="HOST:PORT", help="the engine's pacs_oru source, for ORU^R01 reports")
@click.option("--report-url", metavar="URL", help="the engine's pacs_report_http source, for SOAP and REST reports")
def simulate_pacs(host: str, port: int, hl7_port: int, report_hl7: str | None, report_url: str | None) -> None:
    """A PACS taking exam orders over SOAP (WSDL at /ExamOrderService?wsdl), REST (/api) and
    HL7 ORM^O01 over MLLP; faults are injected with POST /_control/faults, and reports are
    sent back with POST /_control/reports {"accession_number", "style": hl7|soap|rest, "pdf": true}."""
    from plugins.pacs.simulator.server import report_address, serve  # lazily: only this command needs uvicorn

    if report_hl7:
        try:
            report_address(report_hl7)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--report-hl7") from exc
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, port, hl7_port, report_hl7=report_hl7, report_url=report_url))


def register(cli: click.Group) -> None:
    simulate_group(cli).add_command(simulate_pacs)


__all__ = ["register", "simulate_pacs"]
