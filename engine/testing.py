"""The adapter conformance suite, for the engine's adapters and every plugin's.

Subclass `AdapterConformance` in a pytest module (name the subclass `Test...`) and
provide three fixtures; the suite then checks what the engine relies on:

- a send round trip records the exact request and answer on the `Wire`;
- a failed connect is a `TransientError` (not an unknown outcome) and nothing left;
- transport exceptions, including ones no table knows yet, come out as engine errors
  chained to the original;
- `aclose()` may be called twice; the class declarations are well formed.

    class TestMyAdapter(AdapterConformance):
        @pytest.fixture
        def working_adapter(self, upstream, http_services):
            return MyAdapter(MyAdapter.Config(url=upstream.url), http_services)

        @pytest.fixture
        def dead_adapter(self, dead_port, http_services):
            return MyAdapter(MyAdapter.Config(url=f"http://127.0.0.1:{dead_port}"), http_services)

        @pytest.fixture
        def adapter_raising(self, raising_services):
            return lambda exc: MyAdapter(MyAdapter.Config(url="http://peer.test"), raising_services(exc))

The suite lends `upstream` (the demo HTTP upstream, running), `dead_port`, `http_services`
(the engine's shared HTTP clients) and `raising_services` (clients whose transport raises
a given exception); override `sample_request` when the adapter needs a specific message.
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from engine.adapters.base import Adapter, AdapterConfig, Wire
from engine.demo.upstream import Upstream
from engine.errors import AdapterError, EngineError, OutcomeUnknownError, TransientError
from engine.message import Delivery, Payload
from engine.transports.http import HttpClients

AdapterFactory = Callable[[BaseException], Adapter]


class FutureTransportError(httpx.TransportError):
    """Stands for an exception class a future httpx adds, unknown to every table."""


def transport_exceptions() -> list[BaseException]:
    """Exceptions a transport may raise mid-call; each must become an engine error."""
    return [
        FutureTransportError("an httpx error nobody has mapped"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected without sending a response"),
        httpx.ConnectError("connection refused"),
    ]


class AdapterConformance:
    """Base of an adapter's conformance tests; see the module docstring."""

    # -- fixtures the subclass provides ----------------------------------------------------

    @pytest.fixture
    def working_adapter(self) -> Adapter:
        """An adapter pointed at a peer that answers."""
        raise NotImplementedError("provide a `working_adapter` fixture")

    @pytest.fixture
    def dead_adapter(self) -> Adapter:
        """An adapter pointed at a peer nothing listens on."""
        raise NotImplementedError("provide a `dead_adapter` fixture")

    @pytest.fixture
    def adapter_raising(self) -> AdapterFactory:
        """A factory: the exception its transport raises → an adapter using that transport."""
        raise NotImplementedError("provide an `adapter_raising` fixture")

    @pytest.fixture
    def sample_request(self) -> Payload:
        return Payload.from_json({"conformance": True, "id": "T0001", "items": [1, 2]})

    # -- fixtures the suite lends --------------------------------------------------------

    @pytest.fixture
    async def upstream(self) -> AsyncIterator[Upstream]:
        async with Upstream() as running:
            yield running

    @pytest.fixture
    def dead_port(self) -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    @pytest.fixture
    async def http_services(self) -> AsyncIterator[HttpClients]:
        clients = HttpClients()
        yield clients
        await clients.aclose()

    @pytest.fixture
    async def raising_services(self) -> AsyncIterator[Callable[[BaseException], HttpClients]]:
        made: list[HttpClients] = []

        def services(exc: BaseException) -> HttpClients:
            def handler(request: httpx.Request) -> httpx.Response:
                raise exc

            clients = HttpClients(lambda verify: httpx.MockTransport(handler))
            made.append(clients)
            return clients

        yield services
        for clients in made:
            await clients.aclose()

    @pytest.fixture
    async def closing(self) -> AsyncIterator[Callable[[Adapter], Adapter]]:
        adapters: list[Adapter] = []

        def close_after_test(adapter: Adapter) -> Adapter:
            adapters.append(adapter)
            return adapter

        yield close_after_test
        for adapter in adapters:
            await adapter.aclose()

    # -- the checks ----------------------------------------------------------------------

    def test_declarations(self, working_adapter: Adapter) -> None:
        cls = type(working_adapter)
        assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.name), f"bad adapter name {cls.name!r}"
        assert issubclass(cls.Config, AdapterConfig)
        assert cls.delivery in set(Delivery)
        assert isinstance(cls.idempotent, bool) and isinstance(working_adapter.idempotent, bool)
        assert all(isinstance(key, str) for key in cls.business_keys)

    async def test_send_round_trip_records_the_wire(
        self, working_adapter: Adapter, sample_request: Payload, closing: Callable[[Adapter], Adapter]
    ) -> None:
        adapter = closing(working_adapter)
        wire = Wire()
        answer = await adapter.send(adapter.transform(sample_request), wire)
        assert isinstance(answer, Payload)
        assert wire.request_left
        record = wire.records[-1]
        assert record.sent is not None, "wire.sent() was not called"
        assert record.response is not None, "wire.received() was not called"
        assert isinstance(record.sent.body, bytes) and isinstance(record.response.body, bytes)
        assert isinstance(adapter.transform_response(answer), Payload)

    async def test_failed_connect_is_transient_and_nothing_left(
        self, dead_adapter: Adapter, sample_request: Payload, closing: Callable[[Adapter], Adapter]
    ) -> None:
        adapter = closing(dead_adapter)
        wire = Wire()
        with pytest.raises(TransientError) as raised:
            await adapter.send(adapter.transform(sample_request), wire)
        assert not isinstance(raised.value, OutcomeUnknownError), "a refused connect never left"
        assert raised.value.detail.get("request_left") is False
        assert not wire.request_left, "wire.sent() recorded a request that never left"

    @pytest.mark.parametrize("exc", transport_exceptions(), ids=lambda exc: type(exc).__name__)
    async def test_transport_exceptions_become_engine_errors(
        self,
        adapter_raising: AdapterFactory,
        sample_request: Payload,
        exc: BaseException,
        closing: Callable[[Adapter], Adapter],
    ) -> None:
        adapter = closing(adapter_raising(exc))
        with pytest.raises(EngineError) as raised:
            await adapter.send(adapter.transform(sample_request), Wire())
        assert isinstance(raised.value, AdapterError)
        assert _chained_to(raised.value, exc), "raise the engine error `from` the original"
        assert "condition" in raised.value.detail

    async def test_aclose_is_idempotent(self, working_adapter: Adapter) -> None:
        await working_adapter.aclose()
        await working_adapter.aclose()


def _chained_to(error: BaseException, original: BaseException) -> bool:
    return any(link is original for link in _chain(error))


def _chain(error: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = error
    while current is not None:
        yield current
        current = current.__cause__ or current.__context__
