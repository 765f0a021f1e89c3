from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from engine.adapters.base import Wire
from engine.demo.upstream import Upstream
from engine.errors import OutcomeUnknownError, TransientError
from engine.serving import LocalServer
from engine.transports.http import HttpClients, exchange


async def test_clients_are_shared_by_parameters_and_closed_together() -> None:
    clients = HttpClients()
    first = clients.http_client(timeout=5)
    assert clients.http_client(timeout=5) is first
    other = clients.http_client(timeout=5, base_url="http://centre.test")
    assert other is not first
    await clients.aclose()
    assert first.is_closed and other.is_closed
    await clients.aclose()  # idempotent
    replacement = clients.http_client(timeout=5)
    assert replacement is not first and not replacement.is_closed
    await clients.aclose()


async def test_transport_is_injectable() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"path": request.url.path})

    clients = HttpClients(lambda verify: httpx.MockTransport(answer))
    try:
        response = await clients.http_client(timeout=1).get("http://centre.test/ping")
        assert response.json() == {"path": "/ping"}
    finally:
        await clients.aclose()


@pytest.fixture
async def clients():  # type: ignore[no-untyped-def]
    shared = HttpClients()
    yield shared
    await shared.aclose()


async def test_exchange_records_exact_request_and_response(clients: HttpClients, upstream: Upstream) -> None:
    client = clients.http_client(timeout=5)
    request = client.build_request(
        "POST", upstream.url, content=b'{"a":1}',
        headers={"Content-Type": "application/json", "Authorization": "Bearer s3cret"},
    )
    wire = Wire()
    response = await exchange(client, request, wire)
    record = wire.current
    assert record.sent is not None and record.response is not None
    assert record.sent.body == b'{"a":1}'
    assert record.sent.headers["content-length"] == "7"
    assert record.sent.headers["authorization"] == "<redacted>"
    assert record.status_code == 200
    assert record.response.body == response.content
    assert upstream.received[0].headers["authorization"] == "Bearer s3cret"


async def test_exchange_withdraws_sent_when_the_request_never_left(clients: HttpClients, dead_port: int) -> None:
    client = clients.http_client(timeout=5)
    wire = Wire()
    with pytest.raises(TransientError) as raised:
        await exchange(client, client.build_request("POST", f"http://127.0.0.1:{dead_port}/"), wire)
    assert raised.value.detail["request_left"] is False
    assert not wire.request_left


async def test_exchange_keeps_sent_when_the_outcome_is_unknown(clients: HttpClients, upstream: Upstream) -> None:
    upstream.set_mode("slow", delay=5)
    client = clients.http_client(timeout=0.05)
    wire = Wire()
    with pytest.raises(OutcomeUnknownError):
        await exchange(client, client.build_request("POST", upstream.url, content=b"x"), wire)
    assert wire.request_left
    assert wire.current.response is None


async def test_shared_clients_keep_no_cookies(clients: HttpClients) -> None:
    seen: list[bytes | None] = []

    async def sets_a_cookie(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        seen.append(dict(scope["headers"]).get(b"cookie"))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"set-cookie", b"session=abc; Path=/")]})
        await send({"type": "http.response.body", "body": b""})

    client = clients.http_client(timeout=5)
    async with LocalServer(sets_a_cookie) as server:
        await client.get(f"{server.url}/login")
        await client.get(f"{server.url}/next")
    assert seen == [None, None]
    assert len(client.cookies) == 0
    with pytest.raises(ValueError, match="no cookies"):
        client.cookies = {"session": "abc"}  # type: ignore[assignment]
