"""Run a PacsSimulator on real sockets: HTTP (SOAP, REST) with uvicorn, HL7 over MLLP beside it
(port 0 picks a free port)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

import uvicorn

from plugins.pacs.simulator.app import SOAP_PATH, PacsSimulator
from plugins.pacs.simulator.mllp import MllpEndpoint


class PacsServer:
    """`async with PacsServer(PacsSimulator()) as pacs:` serves on 127.0.0.1 until the block ends."""

    def __init__(self, simulator: PacsSimulator, *, host: str = "127.0.0.1", port: int = 0, hl7_port: int = 0) -> None:
        self.simulator = simulator
        self.mllp = MllpEndpoint(simulator.state, host=host, port=hl7_port)
        self.host = host
        self.port = port
        self._server = uvicorn.Server(
            uvicorn.Config(simulator, host=host, port=port, lifespan="off", log_level="warning", access_log=False)
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def wsdl_url(self) -> str:
        return f"{self.url}{SOAP_PATH}?wsdl"

    @property
    def rest_url(self) -> str:
        return f"{self.url}/api"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the PACS simulator stopped while starting")
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        await self.mllp.start()

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        await self.mllp.stop()
        self._server.should_exit = True
        if self._task is not None:
            await self._task
            self._task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()


async def serve(host: str, port: int, hl7_port: int) -> None:
    """Serve until cancelled (Ctrl-C), after printing where on its first line."""
    server = PacsServer(PacsSimulator(), host=host, port=port, hl7_port=hl7_port)
    await server.start()
    print(
        f"PACS simulator on {server.url} "
        f"(WSDL {server.wsdl_url}, REST {server.rest_url}, MLLP {host}:{server.mllp.port})",
        flush=True,
    )
    try:
        await server.wait()
    finally:
        await server.stop()
