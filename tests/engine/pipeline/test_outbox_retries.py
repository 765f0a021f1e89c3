"""Retries inside one outbox delivery never let the delivery be claimed a second time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.adapters.memory import memory_peer, reset_memory_peers
from engine.message import Payload
from tests.engine.pipeline.test_routing_and_storage import start_engine


@pytest.fixture(autouse=True)
def fresh_peers() -> None:
    reset_memory_peers()


async def test_a_retried_delivery_reaches_the_destination_once(tmp_path: Path) -> None:
    engine = await start_engine(tmp_path, {"upload": {"destinations": [{
        "name": "platform", "adapter": "memory", "delivery": "async",
        "config": {"peer": "platform", "idempotent": True},
        "retry": {"attempts": 3, "initial_backoff": 0, "max_backoff": 0.01},
    }]}})
    peer = memory_peer("platform")
    peer.delay = 0.01
    try:
        for n in range(30):
            peer.fail_next(1)
            await engine.accept("upload", Payload.from_json({"n": n}), caller="test")
            for _ in range(300):
                if len(peer.delivered) > n:
                    break
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # a second claim would deliver again now
    finally:
        await engine.stop()
    assert [p.json()["n"] for p in peer.delivered] == list(range(30))
