from __future__ import annotations

import gzip
import inspect
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from engine.demo.upstream import Upstream
from engine.serving import LocalServer
from engine.transports import HTTPX_DECISIONS, decide
from engine.transports.aiohttp_transport import AIOHTTP_TO_HTTPX, EngineAiohttpTransport, httpx_error_for
from engine.transports.http import payload_of


def test_every_exception_class_aiohttp_exports_has_a_mapping() -> None:
    exported = {
        obj
        for obj in vars(aiohttp).values()
        if inspect.isclass(obj) and issubclass(obj, aiohttp.ClientError)
    }
    undecided = sorted(cls.__name__ for cls in exported - set(AIOHTTP_TO_HTTPX))
    assert undecided == [], f"decide how to map: {undecided}"


def test_every_mapping_target_has_an_engine_decision() -> None:
    for target in AIOHTTP_TO_HTTPX.values():
        assert target in HTTPX_DECISIONS


def test_disconnect_after_sending_is_not_reported_as_a_connect_failure() -> None:
    request = httpx.Request("POST", "http://centre.test/settle")
    mapped = httpx_error_for(aiohttp.ServerDisconnectedError(), request)
    assert isinstance(mapped, httpx.RemoteProtocolError)
    assert decide(type(mapped)).request_left is True
    assert mapped.request is request


def test_connector_failures_never_left() -> None:
    for cls, target in AIOHTTP_TO_HTTPX.items():
        if issubclass(cls, aiohttp.ClientConnectorError) or cls is aiohttp.ConnectionTimeoutError:
            assert decide(target).request_left is False, cls.__name__


async def _gzip_and_chunked(scope: Scope, receive: Receive, send: Send) -> None:
    body = (await receive())["body"]
    if scope["path"] == "/gzip":
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-encoding", b"gzip"),
            (b"content-length", str(len(GZIPPED)).encode()), (b"set-cookie", b"session=abc"),
        ]})
        await send({"type": "http.response.body", "body": GZIPPED})
        return
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body[:3], "more_body": True})
    await send({"type": "http.response.body", "body": body[3:]})


GZIPPED = gzip.compress(b'{"ok": true}')


@pytest.fixture
async def transport() -> AsyncIterator[EngineAiohttpTransport]:
    carrier = EngineAiohttpTransport(verify=True, limits=httpx.Limits(max_connections=4))
    yield carrier
    await carrier.aclose()


async def test_compressed_answer_is_decoded_once_and_kept_exact(transport: EngineAiohttpTransport) -> None:
    async with LocalServer(_gzip_and_chunked) as server, httpx.AsyncClient(transport=transport) as client:
        response = await client.get(f"{server.url}/gzip")
        assert response.json() == {"ok": True}
        assert response.headers["content-encoding"] == "gzip"
        assert payload_of(response).body == b'{"ok": true}'


async def test_chunked_answer_gets_no_invented_content_length(transport: EngineAiohttpTransport) -> None:
    async with LocalServer(_gzip_and_chunked) as server, httpx.AsyncClient(transport=transport) as client:
        response = await client.post(f"{server.url}/echo", content=b"chunked body")
        assert (response.status_code, response.content) == (201, b"chunked body")
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers


async def test_a_streamed_request_body_is_sent_whole(transport: EngineAiohttpTransport) -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"first "
        yield b"second"

    async with LocalServer(_gzip_and_chunked) as server, httpx.AsyncClient(transport=transport) as client:
        response = await client.post(f"{server.url}/echo", content=parts())
        assert response.content == b"first second"


async def test_slow_answer_is_a_read_timeout_after_the_request_left(
    transport: EngineAiohttpTransport, upstream: Upstream
) -> None:
    upstream.set_mode("slow", delay=5)
    async with httpx.AsyncClient(transport=transport, timeout=0.05) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(upstream.url, content=b"x")


async def test_refused_connection_is_a_connect_error(transport: EngineAiohttpTransport, dead_port: int) -> None:
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"http://127.0.0.1:{dead_port}/", content=b"x")
