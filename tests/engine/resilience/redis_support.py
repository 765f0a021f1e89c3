"""Helpers for the shared-breaker tests: the test Redis, a key namespace per test, and a
TCP relay in front of Redis that can be cut and restored on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis

REDIS_URL_VARIABLE = "HISBRIDGE_TEST_REDIS_URL"


def redis_url_or_skip() -> str:
    url = os.environ.get(REDIS_URL_VARIABLE)
    if not url:
        pytest.skip(f"{REDIS_URL_VARIABLE} is not set (e.g. redis://127.0.0.1:6379/0)")
    return url


def unique_prefix() -> str:
    return f"hisbridge-test:{uuid.uuid4().hex[:12]}"


async def delete_namespace(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def with_address(url: str, host: str, port: int) -> str:
    """`url` pointed at host:port (keeping scheme, credentials and database)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class TcpRelay:
    """Forwards 127.0.0.1:<port> to a target; `stop()` refuses and cuts connections,
    `start()` listens again on the same port, `pause()` holds everything back."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    def pause(self) -> None:
        """Keep connections open but pass nothing on: a Redis that hangs."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await asyncio.gather(*self._pumps, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers.update((client_writer, upstream_writer))
        pumps = [
            asyncio.create_task(self._pump(client_reader, upstream_writer)),
            asyncio.create_task(self._pump(upstream_reader, client_writer)),
        ]
        self._pumps.update(pumps)
        await asyncio.gather(*pumps, return_exceptions=True)
        for writer in (client_writer, upstream_writer):
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self._pumps.difference_update(pumps)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
