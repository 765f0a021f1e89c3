"""End-to-end fixtures: a real daemon (API on a real socket) beside a real upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.daemon import Daemon
from engine.demo.upstream import Upstream
from tests.e2e.harness import HIS_TOKEN, OPERATOR_TOKEN, running_daemon, write_conf


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_HIS_TOKEN", HIS_TOKEN)
    monkeypatch.setenv("E2E_OPERATOR_TOKEN", OPERATOR_TOKEN)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with Upstream() as up:
        yield up


@pytest.fixture
def conf(tmp_path: Path, upstream: Upstream) -> Path:
    return write_conf(tmp_path, upstream.url)


@pytest.fixture
async def daemon(conf: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(conf) as running:
        yield running
