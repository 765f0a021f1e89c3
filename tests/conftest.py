"""Fixtures every test directory shares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from engine.transports.http import HttpClients


@pytest.fixture
async def services() -> AsyncIterator[HttpClients]:
    """The engine's shared HTTP clients, as adapters get them in the daemon."""
    clients = HttpClients()
    yield clients
    await clients.aclose()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for calling a daemon or simulator under test."""
    async with httpx.AsyncClient(timeout=10) as http:
        yield http
