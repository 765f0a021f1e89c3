"""A real Engine on a temporary conf with an ASTM source, for the lis_device source tests.

Destinations: `lis` (memory peer `lis`, async) gets result messages; `lis_orders` (memory
peer `orders`, sync) answers host queries (ASTM and HL7). `start_channel()` runs any other
channel.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from engine.catalogue import Catalogue
from engine.config.loader import base_dir, load_config
from engine.message import Payload
from engine.plugin_manager import create_plugin_manager
from engine.runtime import Engine
from engine.store.records import MessageView

FAST_TIMERS = {"sender_reply": 1.0, "receiver_idle": 1.0, "busy_retry": 0.1, "host_contention_hold": 0.2}


ORDER_SERVICE = {
    "name": "lis_orders",
    "adapter": "memory",
    "delivery": "sync",
    "filter": {"path": "$.kind", "regex": "_host_query$"},
    "breaker": {"fail_max": 1, "reset_timeout": 60},
    "config": {"peer": "orders"},
}


async def start_engine(
    tmp_path: Path, kind: str = "astm_tcp", *, orders: dict[str, Any] | None = None, **source: Any
) -> Engine:
    """`orders` replaces the order service's adapter and config (default: memory peer `orders`)."""
    astm = {"timers": FAST_TIMERS, "host_query_timeout": 2.0} if kind.startswith("astm") else {}
    config = {**astm, **source}
    if kind in ("astm_tcp", "mllp", "mllp_lis"):
        config.setdefault("port", 0)
    results = {
        "name": "lis",
        "adapter": "memory",
        "delivery": "async",
        "filter": {"path": "H.2", "regex": "."} if kind.startswith("astm") else {"path": "MSH-9.1", "regex": "."},
        "config": {"peer": "lis"},
    }
    service = {**ORDER_SERVICE, **(orders or {})} if orders else ORDER_SERVICE
    channel = {
        "content_type": "application/x-astm" if kind.startswith("astm") else "application/hl7-v2",
        "source": {"kind": kind, "config": config},
        "destinations": [results, service],
    }
    return await start_channel(tmp_path, channel)


async def start_channel(tmp_path: Path, channel: dict[str, Any], name: str = "analyser") -> Engine:
    """A running Engine whose only channel is `channel` (a channel YAML as a dict)."""
    conf = tmp_path / "conf"
    (conf / "channels").mkdir(parents=True, exist_ok=True)
    (conf / "hisbridge.yaml").write_text(
        yaml.safe_dump({"store": {"url": f"sqlite:///{tmp_path / 'store.db'}"}, "outbox": {"poll_interval": 0.02}})
    )
    (conf / "channels" / f"{name}.yaml").write_text(yaml.safe_dump(channel, allow_unicode=True))
    pm = create_plugin_manager()
    catalogue = Catalogue.build(pm)
    return await Engine.start(
        load_config(conf, catalogue=catalogue), pm=pm, catalogue=catalogue, base_dir=base_dir(conf)
    )


async def stored_raws(engine: Engine) -> list[Payload]:
    views = await engine.store.list_messages(channel="analyser")
    raws = [await engine.store.get_stage(view.id, "raw") for view in sorted(views, key=lambda v: v.id)]
    return [raw for raw in raws if raw is not None]


async def eventually(check: Any, timeout: float = 5.0) -> None:
    """Wait until `check()` is true (polling the event loop; fails after `timeout`)."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def settled(
    engine: Engine, *statuses: str, timeout: float = 10.0, channel: str = "analyser"
) -> list[MessageView]:
    """The channel's messages once there is one and every one has one of `statuses`."""
    async with asyncio.timeout(timeout):
        while True:
            views = await engine.store.list_messages(channel=channel)
            if views and all(view.status in statuses for view in views):
                return sorted(views, key=lambda view: view.id)
            await asyncio.sleep(0.02)
