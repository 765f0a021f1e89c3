"""`hisbridge run`: the engine, its listeners, the outbox worker and the HTTP API in one process.

SIGTERM/SIGINT stop accepting HTTP requests, let in-flight ones finish, stop listeners,
drain the outbox worker's in-flight deliveries and close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pluggy
import structlog
import uvicorn

from engine.api.app import create_app
from engine.attribution.rules import FaultRule
from engine.catalogue import Catalogue
from engine.config.loader import resolve_tokens
from engine.config.model import EngineConfig
from engine.runtime import Engine

log = structlog.get_logger(__name__)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Daemon:
    engine: Engine
    server: uvicorn.Server

    @property
    def port(self) -> int:
        sockets = [s for server in self.server.servers for s in server.sockets]
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.engine.config.api.host}:{self.port}"


async def start_daemon(
    config: EngineConfig, *, pm: pluggy.PluginManager, catalogue: Catalogue, base_dir: Path,
    rules: list[FaultRule] | None = None,
) -> tuple[Daemon, asyncio.Task[None]]:
    """Start engine and API; returns once the API socket listens. `rules` are the site's own
    fault rules (conf/fault_rules.yaml), tried before the plugins' and the engine's."""
    engine = await Engine.start(config, pm=pm, catalogue=catalogue, base_dir=base_dir, rules=rules)
    app = create_app(engine, tokens=resolve_tokens(config.api, base_dir))
    server = _Server(
        uvicorn.Config(
            app, host=config.api.host, port=config.api.port, log_config=None, access_log=False,
            lifespan="off", timeout_graceful_shutdown=10,
        )
    )
    serving = asyncio.create_task(server.serve(), name="api")
    while not server.started:
        if serving.done():
            await engine.stop()
            await serving  # raises the bind error
            raise RuntimeError(f"API server on {config.api.host}:{config.api.port} did not start")
        await asyncio.sleep(0.01)
    return Daemon(engine, server), serving


async def stop_daemon(daemon: Daemon, serving: asyncio.Task[None]) -> None:
    daemon.server.should_exit = True
    await serving
    await daemon.engine.stop()


async def run_until_signalled(
    config: EngineConfig, *, pm: pluggy.PluginManager, catalogue: Catalogue, base_dir: Path,
    rules: list[FaultRule] | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon, serving = await start_daemon(config, pm=pm, catalogue=catalogue, base_dir=base_dir, rules=rules)
    log.info("hisbridge running", api=daemon.url, channels=sorted(daemon.engine.channels))
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, serving}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    log.info("hisbridge stopping")
    await stop_daemon(daemon, serving)
    log.info("hisbridge stopped")
