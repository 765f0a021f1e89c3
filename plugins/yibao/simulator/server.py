"""Run a CentreSimulator on a real socket with uvicorn (port 0 picks a free port)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

import uvicorn

from plugins.yibao.simulator.app import CentreSimulator


class SimulatorServer:
    """`async with SimulatorServer(sim) as server:` serves on 127.0.0.1 until the block ends."""

    def __init__(self, simulator: CentreSimulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        self.host = host
        self.port = port
        self._server = uvicorn.Server(
            uvicorn.Config(simulator, host=host, port=port, lifespan="off", log_level="warning", access_log=False)
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the simulator stopped while starting")
            await asyncio.sleep(0.01)
        sockets = self._server.servers[0].sockets
        self.port = sockets[0].getsockname()[1]

    async def wait(self) -> None:
        """Until the server stops by itself (Ctrl-C in `python -m plugins.yibao.simulator`)."""
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        self.simulator.stop()
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
