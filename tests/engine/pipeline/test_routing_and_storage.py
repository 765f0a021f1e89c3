"""Fan-out, per-destination filters and storage modes, on a real engine and store with the
in-core memory destination (no network needed to prove routing)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.adapters.memory import memory_peer, reset_memory_peers
from engine.catalogue import Catalogue
from engine.config.loader import base_dir, load_config
from engine.message import Payload
from engine.plugin_manager import create_plugin_manager
from engine.runtime import Engine


def destination(name: str, peer: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name, "adapter": "memory", "delivery": "async",
        "config": {"peer": peer, "idempotent": True},
        "outbox": {"initial_backoff": 0.05, "max_backoff": 0.2, "max_attempts": 3},
        "breaker": {"fail_max": 100},
        **extra,
    }


async def start_engine(tmp_path: Path, channels: dict[str, dict[str, Any]], plugins: tuple[object, ...] = ()) -> Engine:
    conf = tmp_path / "conf"
    (conf / "channels").mkdir(parents=True)
    (conf / "hisbridge.yaml").write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"}, "outbox": {"poll_interval": 0.02},
    }))
    for name, body in channels.items():
        (conf / "channels" / f"{name}.yaml").write_text(yaml.safe_dump(body))
    pm = create_plugin_manager(extra_plugins=list(plugins))
    catalogue = Catalogue.build(pm)
    return await Engine.start(load_config(conf, catalogue=catalogue), pm=pm, catalogue=catalogue,
                              base_dir=base_dir(conf))


@pytest.fixture(autouse=True)
def fresh_peers() -> None:
    reset_memory_peers()


@pytest.fixture
async def fanout(tmp_path: Path) -> AsyncIterator[Engine]:
    engine = await start_engine(tmp_path, {"discharge": {"destinations": [
        destination("lis", "lis"),
        destination("pharmacy", "pharmacy"),
        destination("critical_pager", "pager", filter={"path": "$.flag", "equals": "critical"}),
    ]}})
    yield engine
    await engine.stop()


async def until(condition, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def bodies(peer: str) -> list[dict[str, Any]]:
    return [json.loads(p.body) for p in memory_peer(peer).delivered]


async def test_a_failing_subscriber_holds_back_and_duplicates_nothing(fanout: Engine) -> None:
    memory_peer("pharmacy").down = True
    ids = [
        (await fanout.accept("discharge", Payload.from_json({"n": n, "flag": "critical" if n % 2 else "normal"}),
                             caller="test")).message_id
        for n in range(6)
    ]

    await until(lambda: len(memory_peer("lis").delivered) == 6 and len(memory_peer("pager").delivered) == 3)
    assert [b["n"] for b in bodies("lis")] == list(range(6))
    assert [b["n"] for b in bodies("pager")] == [1, 3, 5]  # the filter: critical values only
    assert memory_peer("pharmacy").delivered == []

    for n, message_id in enumerate(ids):
        view = await fanout.store.get_message(message_id)
        statuses = {d.destination: d.status for d in view.deliveries}
        assert statuses["lis"] == "sent"
        assert statuses["critical_pager"] == ("sent" if n % 2 else "filtered")
        assert statuses["pharmacy"] in ("queued", "dead")


async def test_the_dead_subscriber_is_named_and_replayable(fanout: Engine) -> None:
    memory_peer("pharmacy").down = True
    message_id = (await fanout.accept("discharge", Payload.from_json({"n": 1, "flag": "normal"}),
                                      caller="test")).message_id

    async def pharmacy_status() -> str:
        view = await fanout.store.get_message(message_id)
        return {d.destination: d.status for d in view.deliveries}["pharmacy"]

    for _ in range(500):
        if await pharmacy_status() == "dead":
            break
        await asyncio.sleep(0.02)
    view = await fanout.store.get_message(message_id)
    pharmacy = next(d for d in view.deliveries if d.destination == "pharmacy")
    assert pharmacy.status == "dead" and pharmacy.attempts == 3
    assert pharmacy.party == "network" and "gave up after 3 attempts" in pharmacy.reason
    assert view.status == "dead"
    assert len(memory_peer("lis").delivered) == 1


@pytest.mark.parametrize(("mode", "expected"), [
    ("full", {"raw", "transformed", "sent", "response_raw", "response_transformed"}),
    ("production", {"raw", "sent", "response_raw", "response_transformed"}),
    ("metadata", set()),
])
async def test_storage_modes_keep_what_they_promise(tmp_path: Path, mode: str, expected: set[str]) -> None:
    engine = await start_engine(tmp_path, {"settle": {
        "storage": mode,
        "destinations": [{"name": "centre", "adapter": "memory", "delivery": "sync", "config": {"peer": "c"}}],
    }})
    try:
        outcome = await engine.call("settle", Payload.from_json({"settlement_id": "S1"}), caller="test")
        view = await engine.store.get_message(outcome.message_id, with_stages=True)
    finally:
        await engine.stop()
    assert outcome.status == "replied"
    assert {stage["name"] for stage in view.stages} == expected
    assert view.deliveries[0].attempts == 1
