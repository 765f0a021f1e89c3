"""LocalServer, the one way the engine and its simulators serve HTTP."""

from __future__ import annotations

import socket
from typing import Any

from engine.serving import LocalServer


async def ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_connections_get_tcp_nodelay_on_the_plain_asyncio_loop() -> None:
    """asyncio sets TCP_NODELAY only on sockets that name IPPROTO_TCP; an accepted socket
    copies the listener's protocol, so the listener must name it (else ~40 ms per answer)."""
    async with LocalServer(ok, host="127.0.0.1", port=0) as server:
        assert server._server is not None
        [listener] = [sock for serving in server._server.servers for sock in serving.sockets]
        assert listener.proto == socket.IPPROTO_TCP
