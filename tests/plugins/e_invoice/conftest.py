"""Fixtures for the e_invoice plugin: a real simulated platform on a socket and adapters on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from engine.transports.http import HttpClients
from plugins.e_invoice.adapter import EInvoiceAdapter, EInvoiceConfig
from plugins.e_invoice.simulator import PlatformServer, PlatformSimulator
from tests.plugins.e_invoice.invoices import APP_KEY, APPID, KEY_ENV, adapter_config


@pytest.fixture
async def platform() -> AsyncIterator[PlatformServer]:
    async with PlatformServer(PlatformSimulator(appid=APPID, key=APP_KEY)) as server:
        yield server


@pytest.fixture
def make_adapter(
    platform: PlatformServer, services: HttpClients, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., EInvoiceAdapter]:
    monkeypatch.setenv(KEY_ENV, APP_KEY)

    def make(**overrides: Any) -> EInvoiceAdapter:
        config = EInvoiceConfig.model_validate(adapter_config(platform.base_url, **overrides))
        return EInvoiceAdapter(config, services)

    return make


@pytest.fixture
def adapter(make_adapter: Callable[..., EInvoiceAdapter]) -> EInvoiceAdapter:
    return make_adapter()
