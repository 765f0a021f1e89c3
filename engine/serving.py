"""An ASGI app on a real socket: the daemon's API, the demo upstream and the plugins' simulators.

uvicorn, with two differences that matter here: it binds the socket itself (SO_REUSEADDR, so
a simulator stopped to play "down" starts again on the same port at once; port 0 picks a free
port), and it leaves the process's SIGINT/SIGTERM handlers alone, so several servers in one
process (tests, the demo) start and stop in any order and the owner decides about shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self

import uvicorn


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LocalServer:
    """`async with LocalServer(app) as server: server.url` — or `start()` / `stop()` at will;
    the port chosen on the first start is kept for later starts."""

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, graceful_seconds: int = 2,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.graceful_seconds = graceful_seconds
        self.on_stop = on_stop
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        # IPPROTO_TCP, not the default 0: asyncio only sets TCP_NODELAY on connections whose
        # socket names the protocol, and without it delayed ACK holds each small answer ~40 ms
        # (uvicorn writes headers and body separately). uvloop sets it either way.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        server = _QuietServer(uvicorn.Config(
            self.app, interface="asgi3", lifespan="off", log_config=None, access_log=False,
            timeout_graceful_shutdown=self.graceful_seconds,
        ))
        self._serving = asyncio.create_task(server.serve(sockets=[sock]))
        self._server = server
        while not server.started:
            if self._serving.done():
                self._server = None
                await self._serving  # raises the start-up failure
                raise RuntimeError(f"server on {self.url} exited during start-up")
            await asyncio.sleep(0.005)

    async def wait(self) -> None:
        """Until the server stops."""
        if self._serving is not None:
            await self._serving

    async def stop(self) -> None:
        """Stop listening, finish in-flight requests (up to the graceful time), close."""
        server, serving = self._server, self._serving
        if server is None or serving is None:
            return
        if self.on_stop is not None:
            self.on_stop()
        server.should_exit = True
        await serving
        self._server = self._serving = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()


async def serve_until_signalled(server: LocalServer, banner: Callable[[LocalServer], str]) -> None:
    """For `python -m ...` entry points: start, print the banner, stop on SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        print(banner(server), flush=True)
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, asyncio.ensure_future(server.wait())}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
