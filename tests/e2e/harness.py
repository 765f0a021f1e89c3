"""End-to-end helpers: a conf dir for a real daemon beside a real upstream, and its tokens."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from engine.catalogue import Catalogue
from engine.config.loader import base_dir, load_config
from engine.daemon import Daemon, start_daemon, stop_daemon
from engine.plugin_manager import create_plugin_manager

HIS_TOKEN = "e2e-his-token"
OPERATOR_TOKEN = "e2e-operator-token"


def write_daemon_conf(
    root: Path, channels: dict[str, dict[str, Any]], *, store_url: str | None = None, api_port: int = 0,
    max_body_bytes: int = 1 << 20,
) -> Path:
    """A conf dir under `root`: test daemon settings (tokens from E2E_HIS_TOKEN and
    E2E_OPERATOR_TOKEN, a quick outbox) and one file per channel."""
    conf = root / "conf"
    (conf / "channels").mkdir(parents=True, exist_ok=True)
    daemon: dict[str, Any] = {
        "store": {"url": store_url or "sqlite:///var/hisbridge.db"},
        "api": {"host": "127.0.0.1", "port": api_port, "max_body_bytes": max_body_bytes, "tokens": [
            {"name": "his", "role": "his", "token": {"$env": "E2E_HIS_TOKEN"}},
            {"name": "operator", "role": "operator", "token": {"$env": "E2E_OPERATOR_TOKEN"}},
        ]},
        "outbox": {"poll_interval": 0.05, "lease_seconds": 5},
    }
    (conf / "hisbridge.yaml").write_text(yaml.safe_dump(daemon))
    for name, channel in channels.items():
        (conf / "channels" / f"{name}.yaml").write_text(yaml.safe_dump(channel, allow_unicode=True))
    return conf


def write_conf(root: Path, upstream_url: str, *, store_url: str | None = None, api_port: int = 0,
               fail_max: int = 3, reset_timeout: float = 1.0) -> Path:
    """A conf dir with one sync channel (`settle`) and one async channel (`upload`)."""
    breaker = {"fail_max": fail_max, "reset_timeout": reset_timeout}
    settle = {
        "destinations": [{
            "name": "centre", "adapter": "http_json", "delivery": "sync", "breaker": breaker,
            "retry": {"attempts": 1},
            "config": {"url": f"{upstream_url}/settle", "timeout": 2},
        }],
    }
    upload = {
        "destinations": [{
            "name": "platform", "adapter": "http_json", "delivery": "async", "breaker": breaker,
            "outbox": {"initial_backoff": 0.1, "max_backoff": 0.5},
            "config": {"url": f"{upstream_url}/upload", "timeout": 2, "idempotent": True},
        }],
    }
    return write_daemon_conf(root, {"settle": settle, "upload": upload}, store_url=store_url,
                             api_port=api_port, max_body_bytes=4096)


@contextlib.asynccontextmanager
async def running_daemon(conf: Path) -> AsyncIterator[Daemon]:
    pm = create_plugin_manager()
    catalogue = Catalogue.build(pm)
    config = load_config(conf, catalogue=catalogue)
    daemon = await start_daemon(config, pm=pm, catalogue=catalogue, base_dir=base_dir(conf))
    try:
        yield daemon
    finally:
        await stop_daemon(daemon)


def his() -> dict[str, str]:
    return {"Authorization": f"Bearer {HIS_TOKEN}"}


def operator() -> dict[str, str]:
    return {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


async def final_status(
    client: httpx.AsyncClient, daemon: Daemon, message_id: str, *, seconds: float = 20.0
) -> dict[str, Any]:
    """The message's status view once it left received/queued; `seconds` bounds the wait
    (never an assertion on speed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        view: dict[str, Any] = (await client.get(f"{daemon.url}/api/v1/messages/{message_id}", headers=his())).json()
        if view["status"] not in ("received", "queued") or loop.time() > deadline:
            return view
        await asyncio.sleep(0.05)
