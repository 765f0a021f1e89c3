"""Shared HTTP clients for adapters, and the recorded request/response exchange.

Adapters keep httpx as their API; which transport carries the bytes is the engine's
choice (`bench/http_transports.py` measures the candidates). Clients are cached by their
parameters so every adapter pointed at the same kind of endpoint shares one pool, and
the engine closes them all at shutdown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx
import structlog

from engine.adapters.base import Wire
from engine.errors import AdapterError
from engine.message import Payload
from engine.transports import translate_errors
from engine.transports.aiohttp_transport import EngineAiohttpTransport

log = structlog.get_logger(__name__)

TransportFactory = Callable[[bool | str], httpx.AsyncBaseTransport]
"""Builds one transport for a TLS `verify` setting (tests pass `httpx.MockTransport`)."""

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=4)
"""Idle connections are dropped after 4 s, before common server idle timeouts (uvicorn 5 s):
reusing a connection the server is closing makes a POST's outcome unknown for nothing."""

REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
"""Header values never stored with a stage: they are credentials, not message content."""


def default_transport(verify: bool | str) -> httpx.AsyncBaseTransport:
    """httpx over aiohttp: the fastest of the transports measured (see the bench)."""
    return EngineAiohttpTransport(verify=verify, limits=DEFAULT_LIMITS)


class _NoCookies(httpx.Cookies):
    """A jar that never takes a cookie from an answer."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class EngineHttpClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` that keeps no cookies.

    One client is shared by every adapter with the same settings, so a session cookie one
    destination set would go to others on the same host; an adapter that needs a session
    sends its header itself. It also spares the cookie jar's parsing of every answer.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, value: object) -> None:
        if value:
            raise ValueError("the engine's HTTP clients keep no cookies; send a Cookie header")


class HttpClients:
    """The engine's `AdapterServices.http_client`: one cached client per parameter set."""

    def __init__(self, transport_factory: TransportFactory = default_transport) -> None:
        self._transport_factory = transport_factory
        self._clients: dict[tuple[float, str, bool | str], httpx.AsyncClient] = {}

    def http_client(
        self, *, timeout: float, base_url: str = "", verify: bool | str = True
    ) -> httpx.AsyncClient:
        """A shared client; the caller must not close it (`aclose()` here does)."""
        key = (timeout, base_url, verify)
        client = self._clients.get(key)
        if client is None or client.is_closed:
            client = EngineHttpClient(
                transport=self._transport_factory(verify),
                timeout=timeout,
                base_url=base_url,
                follow_redirects=False,
            )
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


async def exchange(client: httpx.AsyncClient, request: httpx.Request, wire: Wire) -> httpx.Response:
    """Send `request`, recording it on `wire` before it leaves and the answer on arrival.

    Transport failures come out as engine errors. When the request provably never left
    (connect refused, pool exhausted) the sent record is withdrawn, so `wire.request_left`
    stays truthful; what would have been sent is the message's transformed stage.
    """
    wire.sent(payload_of(request))
    try:
        with translate_errors():
            response = await client.send(request)
    except AdapterError as exc:
        if exc.detail.get("request_left") is False:
            wire.current.sent = None
        raise
    wire.received(payload_of(response), status_code=response.status_code)
    return response


def payload_of(message: httpx.Request | httpx.Response) -> Payload:
    """The exact body and headers of a request or read response, credentials redacted."""
    return Payload(
        body=message.content,
        content_type=message.headers.get("content-type", ""),
        headers=stored_headers(message.headers),
    )


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: "<redacted>" if name.lower() in REDACTED_HEADERS else value
        for name, value in headers.items()
    }
