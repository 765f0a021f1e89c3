"""Business keys with several values per name, and keys only the reply knows, through a real
engine and store: every value is indexed and finds its message."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from engine import hookimpl
from engine.adapters.base import Adapter
from engine.adapters.memory import MemoryAdapter, reset_memory_peers
from engine.business_keys import KeysOut, merge, normalise, view
from engine.message import Payload
from tests.engine.pipeline.test_routing_and_storage import start_engine


class KeyedMemory(MemoryAdapter):
    """The memory destination, indexing every trace code of a sale and the settlement id
    the answer carries."""

    name = "keyed_memory"
    business_keys = ("rx_no", "trace_code", "setl_id")

    def extract_keys(self, request: Payload) -> KeysOut:
        sale = request.json()
        return {"rx_no": sale["rx_no"], "trace_code": [item["code"] for item in sale["items"]]}

    def extract_reply_keys(self, reply: Payload) -> KeysOut:
        return {"setl_id": reply.json().get("setl_id", "")}


class KeyedPlugin:
    @hookimpl
    def hisbridge_register_adapters(self) -> list[type[Adapter]]:
        return [KeyedMemory]


@pytest.fixture(autouse=True)
def fresh_peers() -> None:
    reset_memory_peers()


def sale(rx_no: str, *codes: str) -> Payload:
    return Payload.from_json({"rx_no": rx_no, "items": [{"code": code} for code in codes]})


def keyed(delivery: str, reply: dict[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"peer": "centre", "idempotent": True}
    if reply is not None:
        config["reply"] = reply
    return {"destinations": [{"name": "centre", "adapter": "keyed_memory", "delivery": delivery, "config": config}]}


def test_keys_are_normalised_merged_and_shown_one_value_or_a_list() -> None:
    keys = normalise({"rx_no": "RX-1", "trace_code": ["811", "812", "811", ""], "empty": "", "none": []})
    assert keys == {"rx_no": ("RX-1",), "trace_code": ("811", "812")}
    assert merge(keys, {"trace_code": ("812", "813")})["trace_code"] == ("811", "812", "813")
    assert view([("rx_no", "RX-1"), ("trace_code", "811"), ("trace_code", "812")]) == {
        "rx_no": "RX-1", "trace_code": ["811", "812"]
    }


async def test_every_value_of_a_sync_call_and_its_reply_key_find_the_message(tmp_path: Path) -> None:
    engine = await start_engine(
        tmp_path, {"sale": keyed("sync", reply={"infcode": 0, "setl_id": "SETL-77"})}, plugins=(KeyedPlugin(),)
    )
    try:
        outcome = await engine.call("sale", sale("RX-1", "81000000000000000001", "81000000000000000002"), caller="test")
        assert outcome.status == "replied"
        for name, value in [("rx_no", "RX-1"), ("trace_code", "81000000000000000001"),
                            ("trace_code", "81000000000000000002"), ("setl_id", "SETL-77")]:
            assert await engine.store.find_by_key(name, value) == [outcome.message_id], (name, value)
        stored = await engine.store.get_message(outcome.message_id)
        assert stored is not None
        assert stored.business_keys["trace_code"] == ["81000000000000000001", "81000000000000000002"]
        assert stored.correlation_key == "RX-1"
    finally:
        await engine.stop()


async def test_a_queued_delivery_indexes_its_reply_key_when_it_is_delivered(tmp_path: Path) -> None:
    engine = await start_engine(
        tmp_path, {"sale": keyed("async", reply={"setl_id": "SETL-88"})}, plugins=(KeyedPlugin(),)
    )
    try:
        receipt = await engine.accept("sale", sale("RX-2", "81000000000000000003"), caller="test")
        for _ in range(250):
            if await engine.store.find_by_key("setl_id", "SETL-88"):
                break
            await asyncio.sleep(0.02)
        assert await engine.store.find_by_key("setl_id", "SETL-88") == [receipt.message_id]
        assert await engine.store.find_by_key("trace_code", "81000000000000000003") == [receipt.message_id]
    finally:
        await engine.stop()
