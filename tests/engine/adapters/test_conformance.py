"""The shared conformance suite run against the engine's own adapters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from engine.adapters.base import Adapter
from engine.adapters.http_json import HttpJsonAdapter, HttpJsonConfig
from engine.adapters.memory import MemoryAdapter, MemoryConfig, memory_peer, reset_memory_peers
from engine.demo.upstream import Upstream
from engine.testing import AdapterConformance
from engine.transports.http import HttpClients


def http_json(services: HttpClients, **config: Any) -> HttpJsonAdapter:
    return HttpJsonAdapter(HttpJsonConfig.model_validate(config), services)


class TestHttpJsonConformance(AdapterConformance):
    @pytest.fixture
    def working_adapter(self, upstream: Upstream, http_services: HttpClients) -> Adapter:
        return http_json(http_services, url=f"{upstream.url}/api")

    @pytest.fixture
    def dead_adapter(self, dead_port: int, http_services: HttpClients) -> Adapter:
        return http_json(http_services, url=f"http://127.0.0.1:{dead_port}/api")

    @pytest.fixture
    def adapter_raising(
        self, raising_services: Callable[[BaseException], HttpClients]
    ) -> Callable[[BaseException], Adapter]:
        return lambda exc: http_json(raising_services(exc), url="http://peer.test/api")


class TestMemoryConformance(AdapterConformance):
    @pytest.fixture(autouse=True)
    def fresh_peers(self) -> Iterator[None]:
        reset_memory_peers()
        yield
        reset_memory_peers()

    @pytest.fixture
    def working_adapter(self, http_services: HttpClients) -> Adapter:
        return MemoryAdapter(MemoryConfig(peer="working"), http_services)

    @pytest.fixture
    def dead_adapter(self, http_services: HttpClients) -> Adapter:
        memory_peer("dead").down = True
        return MemoryAdapter(MemoryConfig(peer="dead"), http_services)

    @pytest.fixture
    def adapter_raising(self, http_services: HttpClients) -> Callable[[BaseException], Adapter]:
        def make(exc: BaseException) -> Adapter:
            memory_peer("raising").fail_next(error=exc)
            return MemoryAdapter(MemoryConfig(peer="raising"), http_services)

        return make
