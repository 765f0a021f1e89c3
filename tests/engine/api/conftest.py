"""Fixtures: a real engine (SQLite in tmp_path) behind the real API on a real socket;
see api_harness for the channels."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from api_harness import TOKENS, Api, QuietServer, ThrowawayPlugin, engine_config
from starlette.types import ASGIApp

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


@contextlib.asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free port of 127.0.0.1; yields its URL."""
    server = QuietServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None,
                                        access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("API server did not start")
            await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
