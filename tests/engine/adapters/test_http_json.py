from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from engine.adapters.base import Wire
from engine.adapters.http_json import HttpJsonAdapter, HttpJsonConfig
from engine.demo.upstream import Upstream
from engine.errors import ConfigError, OutcomeUnknownError, PermanentError, TransientError
from engine.message import Payload
from engine.serving import LocalServer
from engine.transports.http import HttpClients


@pytest.fixture
async def clients() -> AsyncIterator[HttpClients]:
    shared = HttpClients()
    yield shared
    await shared.aclose()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with Upstream() as running:
        yield running


def adapter(clients: HttpClients, **config: Any) -> HttpJsonAdapter:
    return HttpJsonAdapter(HttpJsonConfig.model_validate(config), clients)


REQUEST = Payload.from_json({"specimen": "B0001", "result": "7.2"})


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as raised:
        HttpJsonConfig.model_validate({"url": "http://x", "timeout": 0})
    (error,) = raised.value.errors()
    assert error["loc"] == ("timeout",) and error["type"] == "greater_than"
    with pytest.raises(ValidationError, match="url"):
        HttpJsonConfig.model_validate({})
    with pytest.raises(ValidationError, match="url"):
        HttpJsonConfig.model_validate({"url": "ftp://x"})
    with pytest.raises(ValidationError):
        HttpJsonConfig.model_validate({"url": "http://x", "bearer_token": "literal-secret"})


async def test_round_trip_records_the_wire(clients: HttpClients, upstream: Upstream) -> None:
    destination = adapter(clients, url=f"{upstream.url}/lis/results", headers={"X-Hospital": "H1"})
    wire = Wire()
    answer = await destination.send(REQUEST, wire)
    assert answer.json()["echo"] == {"specimen": "B0001", "result": "7.2"}
    assert answer.content_type == "application/json"
    sent = wire.current.sent
    assert sent is not None and sent.body == REQUEST.body
    assert sent.headers["x-hospital"] == "H1"
    assert sent.headers["content-type"] == "application/json"
    assert wire.current.status_code == 200
    assert upstream.received[0].path == "/lis/results"


async def test_the_client_defaults_go_out_and_a_configured_content_type_wins(
    clients: HttpClients, upstream: Upstream
) -> None:
    destination = adapter(clients, url=upstream.url, headers={"content-type": "application/fhir+json"})
    await destination.send(REQUEST, Wire())
    await destination.send(Payload(b"{}", "text/plain"), Wire())
    for received in upstream.received:
        assert received.headers["content-type"] == "application/fhir+json"
        assert received.headers["user-agent"].startswith("python-httpx/")
        assert received.headers["accept-encoding"]


async def test_cookies_an_upstream_sets_are_not_sent_back(clients: HttpClients) -> None:
    seen: list[str | None] = []

    async def sets_a_cookie(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        seen.append(dict(scope["headers"]).get(b"cookie", b"").decode() or None)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"set-cookie", b"session=abc; Path=/"),
        ]})
        await send({"type": "http.response.body", "body": b"{}"})

    async with LocalServer(sets_a_cookie) as server:
        destination = adapter(clients, url=f"{server.url}/api")
        await destination.send(REQUEST, Wire())
        await destination.send(REQUEST, Wire())
    assert seen == [None, None]


async def test_bearer_token_is_read_from_the_environment_and_not_stored(
    clients: HttpClients, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PLATFORM_TOKEN", "tok-123")
    destination = adapter(clients, url=upstream.url, bearer_token={"$env": "TEST_PLATFORM_TOKEN"})
    wire = Wire()
    await destination.send(REQUEST, wire)
    assert upstream.received[0].headers["authorization"] == "Bearer tok-123"
    assert wire.current.sent is not None
    assert wire.current.sent.headers["authorization"] == "<redacted>"


def test_missing_secret_is_a_config_error(clients: HttpClients, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_ABSENT_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="TEST_ABSENT_TOKEN"):
        adapter(clients, url="http://x", bearer_token={"$env": "TEST_ABSENT_TOKEN"})


async def test_5xx_is_transient(clients: HttpClients, upstream: Upstream) -> None:
    upstream.set_mode("fail")
    wire = Wire()
    with pytest.raises(TransientError) as raised:
        await adapter(clients, url=upstream.url).send(REQUEST, wire)
    assert raised.value.detail["http_status"] == 503
    assert wire.current.status_code == 503 and wire.current.response is not None


async def test_4xx_is_a_rejection_with_the_answer(clients: HttpClients, upstream: Upstream) -> None:
    upstream.set_mode("reject")
    with pytest.raises(PermanentError) as raised:
        await adapter(clients, url=upstream.url).send(REQUEST, Wire())
    assert raised.value.detail["http_status"] == 400
    assert "E400" in str(raised.value.detail["body_excerpt"])


async def test_timeout_after_sending_is_an_unknown_outcome(clients: HttpClients, upstream: Upstream) -> None:
    upstream.set_mode("slow", delay=5)
    wire = Wire()
    with pytest.raises(OutcomeUnknownError):
        await adapter(clients, url=upstream.url, timeout=0.05).send(REQUEST, wire)
    assert wire.request_left


async def test_dead_port_is_transient_and_nothing_left(clients: HttpClients) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    wire = Wire()
    with pytest.raises(TransientError) as raised:
        await adapter(clients, url=f"http://127.0.0.1:{port}/").send(REQUEST, wire)
    assert not isinstance(raised.value, OutcomeUnknownError)
    assert not wire.request_left


def test_idempotent_is_declared_by_class_and_config(clients: HttpClients) -> None:
    assert HttpJsonAdapter.idempotent is False
    assert adapter(clients, url="http://x").idempotent is False
    assert adapter(clients, url="http://x", idempotent=True).idempotent is True
    assert HttpJsonAdapter.idempotent is False
