"""Run a PacsSimulator on real sockets: HTTP (SOAP, REST) through the engine's LocalServer, HL7
over MLLP beside it (port 0 picks a free port)."""

from __future__ import annotations

from engine.serving import LocalServer, serve_until_signalled
from plugins.pacs.simulator.app import SOAP_PATH, PacsSimulator
from plugins.pacs.simulator.mllp import MllpEndpoint


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


async def serve(host: str, port: int, hl7_port: int) -> None:
    """Serve until SIGINT/SIGTERM, after printing where on its first line."""
    server = PacsServer(PacsSimulator(), host=host, port=port, hl7_port=hl7_port)
    await serve_until_signalled(server, lambda running: (
        f"PACS simulator on {running.url} (WSDL {server.wsdl_url}, REST {server.rest_url}, "
        f"MLLP {host}:{server.mllp.port})"
    ))
