"""`hisbridge run`: the engine, its listeners, the outbox worker and the HTTP API in one process.

SIGTERM/SIGINT stop accepting HTTP requests, let in-flight ones finish, stop listeners,
drain the outbox worker's in-flight deliveries and close the store.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from pathlib import Path

import pluggy
import structlog

from engine.api.app import create_app
from engine.attribution.rules import FaultRule
from engine.catalogue import Catalogue
from engine.config.loader import resolve_tokens
from engine.config.model import EngineConfig
from engine.runtime import Engine
from engine.serving import LocalServer

log = structlog.get_logger(__name__)


@dataclass
class Daemon:
    engine: Engine
    server: LocalServer

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url


async def start_daemon(
    config: EngineConfig, *, pm: pluggy.PluginManager, catalogue: Catalogue, base_dir: Path,
    rules: list[FaultRule] | None = None,
) -> Daemon:
    """Start engine and API; returns once the API socket listens. `rules` are the site's own
    fault rules (conf/fault_rules.yaml), tried before the plugins' and the engine's."""
    engine = await Engine.start(config, pm=pm, catalogue=catalogue, base_dir=base_dir, rules=rules)
    app = create_app(engine, tokens=resolve_tokens(config.api, base_dir))
    server = LocalServer(app, host=config.api.host, port=config.api.port, graceful_seconds=10)
    try:
        await server.start()
    except BaseException:
        await engine.stop()
        raise
    return Daemon(engine, server)


async def stop_daemon(daemon: Daemon) -> None:
    """Finish in-flight HTTP requests, then stop the engine."""
    await daemon.server.stop()
    await daemon.engine.stop()


async def run_until_signalled(
    config: EngineConfig, *, pm: pluggy.PluginManager, catalogue: Catalogue, base_dir: Path,
    rules: list[FaultRule] | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon = await start_daemon(config, pm=pm, catalogue=catalogue, base_dir=base_dir, rules=rules)
    log.info("hisbridge running", api=daemon.url, channels=sorted(daemon.engine.channels))
    await stop.wait()
    log.info("hisbridge stopping")
    await stop_daemon(daemon)
    log.info("hisbridge stopped")
