"""The engine's adapter conformance suite, run on the e_invoice adapter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.adapters.base import Adapter
from engine.message import Payload
from engine.testing import AdapterConformance, AdapterFactory
from engine.transports.http import HttpClients
from plugins.e_invoice.adapter import EInvoiceAdapter, EInvoiceConfig
from plugins.e_invoice.simulator import PlatformServer
from tests.plugins.e_invoice.invoices import APP_KEY, KEY_ENV, adapter_config, outpatient


def build(base_url: str, services: HttpClients) -> EInvoiceAdapter:
    return EInvoiceAdapter(EInvoiceConfig.model_validate(adapter_config(base_url)), services)


class TestEInvoiceConformance(AdapterConformance):
    @pytest.fixture(autouse=True)
    def app_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(KEY_ENV, APP_KEY)

    @pytest.fixture
    def sample_request(self) -> Payload:
        return Payload.from_json(outpatient("MZ-CONFORMANCE"))

    @pytest.fixture
    def working_adapter(self, platform: PlatformServer, http_services: HttpClients) -> Adapter:
        return build(platform.base_url, http_services)

    @pytest.fixture
    def dead_adapter(self, dead_port: int, http_services: HttpClients) -> Adapter:
        return build(f"http://127.0.0.1:{dead_port}/medical-web", http_services)

    @pytest.fixture
    def adapter_raising(self, raising_services: Callable[[BaseException], HttpClients]) -> AdapterFactory:
        def make(exc: BaseException) -> Any:
            return build("http://peer.test/medical-web", raising_services(exc))

        return make
