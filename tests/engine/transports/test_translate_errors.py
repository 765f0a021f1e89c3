"""httpx exceptions become engine errors; each decision is proven on a real socket where
one can produce it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator

import httpx
import pytest

from engine.demo.upstream import Upstream
from engine.errors import (
    AdapterError,
    EngineError,
    OutcomeUnknownError,
    PermanentError,
    StoreError,
    TransientError,
)
from engine.transports import HTTPX_DECISIONS, NOT_TRANSLATED, translate_errors
from engine.transports.http import default_transport


def test_every_exception_class_httpx_exports_has_a_decision() -> None:
    exported = {
        obj
        for obj in vars(httpx).values()
        if inspect.isclass(obj) and issubclass(obj, Exception)
    }
    decided = set(HTTPX_DECISIONS) | NOT_TRANSLATED | {httpx.HTTPStatusError}
    undecided = sorted(cls.__name__ for cls in exported - decided)
    assert undecided == [], f"decide how to translate: {undecided}"
    assert httpx.HTTPError in exported and httpx.TransportError in exported


def test_usable_in_sync_code_and_chains_the_original() -> None:
    original = httpx.ConnectError("refused")
    with pytest.raises(TransientError) as raised:
        with translate_errors():
            raise original
    assert raised.value.__cause__ is original
    assert raised.value.detail == {
        "condition": "connect",
        "exception": "ConnectError",
        "request_left": False,
    }


@pytest.mark.parametrize(
    ("exc", "error", "condition", "request_left"),
    [
        (httpx.ConnectTimeout("t"), TransientError, "connect", False),
        (httpx.PoolTimeout("t"), TransientError, "connect", False),
        (httpx.ReadTimeout("t"), OutcomeUnknownError, "timeout", True),
        (httpx.WriteTimeout("t"), OutcomeUnknownError, "timeout", True),
        (httpx.ReadError("r"), OutcomeUnknownError, "reset", True),
        (httpx.WriteError("w"), OutcomeUnknownError, "reset", True),
        (httpx.RemoteProtocolError("p"), OutcomeUnknownError, "reset", True),
        (httpx.LocalProtocolError("p"), PermanentError, "request", False),
        (httpx.UnsupportedProtocol("u"), PermanentError, "config", False),
        (httpx.InvalidURL("u"), PermanentError, "config", False),
        (httpx.DecodingError("d"), OutcomeUnknownError, "decoding", True),
    ],
)
def test_decisions(exc: Exception, error: type[AdapterError], condition: str, request_left: bool) -> None:
    with pytest.raises(AdapterError) as raised:
        with translate_errors():
            raise exc
    assert type(raised.value) is error
    assert raised.value.detail["condition"] == condition
    assert raised.value.detail["request_left"] is request_left
    assert raised.value.detail["exception"] == type(exc).__name__


def test_a_class_httpx_adds_later_is_still_translated_pessimistically() -> None:
    class FutureTransportError(httpx.TransportError):
        pass

    with pytest.raises(OutcomeUnknownError) as raised:
        with translate_errors():
            raise FutureTransportError("new")
    assert raised.value.detail["exception"] == "FutureTransportError"


def test_status_errors_by_code() -> None:
    request = httpx.Request("POST", "http://centre.test/api")
    for status, error in ((503, TransientError), (429, TransientError), (404, PermanentError)):
        response = httpx.Response(status, request=request)
        with pytest.raises(error) as raised:
            with translate_errors():
                response.raise_for_status()
        assert raised.value.detail["http_status"] == status


def test_engine_errors_and_api_misuse_pass_through() -> None:
    with pytest.raises(StoreError):
        with translate_errors():
            raise StoreError("db")
    with pytest.raises(httpx.StreamConsumed):
        with translate_errors():
            raise httpx.StreamConsumed()
    assert issubclass(StoreError, EngineError)


# -- real sockets --------------------------------------------------------------------


@pytest.fixture(params=["httpcore", "engine_default"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    """Every real-socket decision holds for httpx's own transport and the engine's."""
    transport = default_transport(True) if request.param == "engine_default" else None
    async with httpx.AsyncClient(timeout=5, transport=transport) as http:
        yield http


async def test_refused_connect_did_not_leave(client: httpx.AsyncClient, dead_port: int) -> None:
    with pytest.raises(TransientError) as raised:
        with translate_errors():
            await client.post(f"http://127.0.0.1:{dead_port}/", content=b"{}")
    assert not isinstance(raised.value, OutcomeUnknownError)
    assert raised.value.detail["condition"] == "connect"
    assert raised.value.detail["host"] == "127.0.0.1"
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\"", id="closed mid-answer"),
        pytest.param(b"NOT HTTP AT ALL\r\n\r\n", id="not HTTP"),
    ],
)
async def test_a_broken_answer_is_an_unknown_outcome(client: httpx.AsyncClient, answer: bytes) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(broken, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(OutcomeUnknownError):
            with translate_errors():
                await client.post(f"http://127.0.0.1:{port}/", content=b"{}")
    finally:
        server.close()
        await server.wait_closed()


async def test_read_timeout_outcome_unknown(client: httpx.AsyncClient, upstream: Upstream) -> None:
    upstream.set_mode("slow", delay=5)
    with pytest.raises(OutcomeUnknownError) as raised:
        with translate_errors():
            await client.post(upstream.url, content=b'{"n": 1}', timeout=0.05)
    assert raised.value.detail["condition"] == "timeout"
    assert upstream.count == 1  # it did arrive: the outcome really is unknown


async def test_peer_closing_after_the_request_is_an_unknown_outcome(client: httpx.AsyncClient) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(OutcomeUnknownError) as raised:
            with translate_errors():
                await client.post(f"http://127.0.0.1:{port}/", content=b"{}")
        assert raised.value.detail["condition"] == "reset"
    finally:
        server.close()
        await server.wait_closed()


async def test_tls_failure_is_named(client: httpx.AsyncClient, upstream: Upstream) -> None:
    with pytest.raises(TransientError) as raised:
        with translate_errors():
            await client.get(upstream.url.replace("http://", "https://"))
    assert raised.value.detail["condition"] == "tls"
    assert raised.value.detail["request_left"] is False


async def test_unusable_url_is_a_config_error(client: httpx.AsyncClient) -> None:
    with pytest.raises(PermanentError) as raised:
        with translate_errors():
            await client.get("ftp://files.example.org/x")
    assert raised.value.detail["condition"] == "config"
