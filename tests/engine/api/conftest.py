"""Fixtures: a real engine (SQLite in tmp_path) behind the real API on a real socket;
see api_harness for the channels."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from api_harness import TOKENS, Api, QuietServer, ThrowawayPlugin, engine_config

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
        server = QuietServer(uvicorn.Config(
            create_app(engine, tokens=TOKENS), host="127.0.0.1", port=0, log_config=None,
            access_log=False, lifespan="off",
        ))
    except BaseException:
        await engine.stop()
        raise
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                await serving
                raise RuntimeError("API server did not start")
            await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield Api(engine, upstream, url, client)
    finally:
        server.should_exit = True
        await serving
        await engine.stop()
