"""Run a PacsSimulator on real sockets: HTTP (SOAP, REST) through the engine's LocalServer, HL7
over MLLP beside it (port 0 picks a free port)."""

from __future__ import annotations

from engine.serving import LocalServer, serve_until_signalled
from plugins.pacs.simulator.app import SOAP_PATH, PacsSimulator
from plugins.pacs.simulator.mllp import MllpEndpoint
from plugins.pacs.simulator.reports import ReportSender


class PacsServer(LocalServer):
    """`async with PacsServer(PacsSimulator()) as pacs:` serves on 127.0.0.1 until the block ends."""

    def __init__(self, simulator: PacsSimulator, *, host: str = "127.0.0.1", port: int = 0, hl7_port: int = 0) -> None:
        super().__init__(simulator, host=host, port=port)
        self.simulator = simulator
        self.mllp = MllpEndpoint(simulator.state, host=host, port=hl7_port)

    @property
    def wsdl_url(self) -> str:
        return f"{self.url}{SOAP_PATH}?wsdl"

    @property
    def rest_url(self) -> str:
        return f"{self.url}/api"

    async def start(self) -> None:
        await super().start()
        await self.mllp.start()

    async def stop(self) -> None:
        await self.mllp.stop()
        await super().stop()
        if self.simulator.reporter is not None:
            await self.simulator.reporter.aclose()


def report_address(text: str) -> tuple[str, int]:
    """`host:port` of the engine's `pacs_oru` source."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {text!r}")
    return host, int(port)


async def serve(
    host: str, port: int, hl7_port: int, *, report_hl7: str | None = None, report_url: str | None = None
) -> None:
    """Serve until SIGINT/SIGTERM, after printing where on its first line. With `report_hl7`
    (host:port of a pacs_oru source) or `report_url` (a pacs_report_http source), reports are
    sent there on `POST /_control/reports`."""
    reporter = None
    if report_hl7 or report_url:
        reporter = ReportSender(mllp=report_address(report_hl7) if report_hl7 else None, http_url=report_url)
    server = PacsServer(PacsSimulator(reporter=reporter), host=host, port=port, hl7_port=hl7_port)
    await serve_until_signalled(server, lambda running: (
        f"PACS simulator on {running.url} (WSDL {server.wsdl_url}, REST {server.rest_url}, "
        f"MLLP {host}:{server.mllp.port})"
    ))
