"""Fixtures: a real engine (SQLite in tmp_path) behind the real API on a real socket;
see api_harness for the channels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from api_harness import TOKENS, Api, ThrowawayPlugin, engine_config, serving

from engine.adapters.memory import reset_memory_peers
from engine.api.app import create_app
from engine.catalogue import Catalogue
from engine.demo.upstream import Upstream
from engine.plugin_manager import create_plugin_manager
from engine.runtime import Engine


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with Upstream() as up:
        yield up


@pytest.fixture
async def api(tmp_path: Path, upstream: Upstream) -> AsyncIterator[Api]:
    pm = create_plugin_manager(load_entry_points=False, extra_plugins=[ThrowawayPlugin()])
    engine = await Engine.start(
        engine_config(tmp_path, upstream.url), pm=pm, catalogue=Catalogue.build(pm), base_dir=tmp_path,
        run_sources=False,
    )
    try:
        async with serving(create_app(engine, tokens=TOKENS)) as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                yield Api(engine, upstream, url, client)
    finally:
        await engine.stop()
        reset_memory_peers()
