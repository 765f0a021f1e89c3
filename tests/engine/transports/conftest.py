from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from engine.demo.upstream import Upstream


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with Upstream() as running:
        yield running


@pytest.fixture
def dead_port() -> int:
    """A port nothing listens on (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
