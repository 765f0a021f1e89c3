from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from engine.adapters.base import Wire
from engine.adapters.builtin import hisbridge_register_adapters
from engine.adapters.http_json import HttpJsonAdapter
from engine.adapters.memory import MemoryAdapter, MemoryConfig, memory_peer, reset_memory_peers
from engine.errors import OutcomeUnknownError, PermanentError, TransientError
from engine.message import Payload
from engine.transports.http import HttpClients


@pytest.fixture(autouse=True)
def fresh_peers() -> Iterator[None]:
    reset_memory_peers()
    yield
    reset_memory_peers()


def adapter(**config: object) -> MemoryAdapter:
    return MemoryAdapter(MemoryConfig.model_validate(config), HttpClients())


REQUEST = Payload.from_json({"barcode": "B0001"})


async def test_echoes_and_records() -> None:
    wire = Wire()
    assert await adapter().send(REQUEST, wire) == REQUEST
    peer = memory_peer()
    assert peer.requests == [REQUEST] and peer.delivered == [REQUEST]
    assert wire.current.sent == REQUEST and wire.current.status_code == 200


async def test_configured_reply() -> None:
    answer = await adapter(reply={"code": 0}).send(REQUEST, Wire())
    assert answer.json() == {"code": 0}


async def test_fail_next_then_recover() -> None:
    destination = adapter(peer="lab")
    memory_peer("lab").fail_next(2)
    for _ in range(2):
        with pytest.raises(TransientError) as raised:
            await destination.send(REQUEST, Wire())
        assert raised.value.detail["http_status"] == 503
    await destination.send(REQUEST, Wire())
    peer = memory_peer("lab")
    assert len(peer.requests) == 3 and peer.delivered == [REQUEST]


async def test_scripted_transport_exceptions_are_translated() -> None:
    destination = adapter()
    peer = memory_peer()
    peer.fail_next(error=httpx.ReadTimeout("slow centre"))
    peer.fail_next(error=PermanentError("rejected", detail={"code": "E01"}))
    wire = Wire()
    with pytest.raises(OutcomeUnknownError):
        await destination.send(REQUEST, wire)
    assert wire.request_left
    with pytest.raises(PermanentError):
        await destination.send(REQUEST, Wire())
    assert peer.delivered == []


async def test_down_peer_refuses_without_receiving() -> None:
    destination = adapter()
    memory_peer().down = True
    wire = Wire()
    with pytest.raises(TransientError) as raised:
        await destination.send(REQUEST, wire)
    assert raised.value.detail["request_left"] is False
    assert not wire.request_left and memory_peer().requests == []


def test_peers_are_shared_by_name_and_reset() -> None:
    first = adapter(peer="pacs")
    assert adapter(peer="pacs").peer is first.peer
    first.peer.fail_next(1)
    first.peer.reset()
    assert not first.peer.script


def test_builtin_plugin_registers_both_adapters() -> None:
    assert hisbridge_register_adapters() == [HttpJsonAdapter, MemoryAdapter]
