"""Serve a PlatformSimulator with uvicorn on a real socket (port 0 picks a free port)."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

import uvicorn

from plugins.e_invoice.simulator.app import SERVICE, PlatformSimulator


class PlatformServer:
    """`async with PlatformServer(sim) as server:` serves until the block ends."""

    def __init__(self, simulator: PlatformSimulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
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

    @property
    def base_url(self) -> str:
        """What the adapter's `base_url` should be."""
        return self.url + SERVICE

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the simulator stopped while starting")
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    async def wait(self) -> None:
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
