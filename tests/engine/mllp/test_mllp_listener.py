"""The MLLP listener over real sockets: framing as real networks deliver it, ACK after store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.adapters.memory import memory_peer, reset_memory_peers
from engine.catalogue import Catalogue
from engine.config.loader import base_dir, load_config
from engine.mllp.framing import MllpDecoder, encode
from engine.plugin_manager import create_plugin_manager
from engine.runtime import Engine
from engine.store.store import MessageStore

FIXTURES = Path(__file__).parents[2] / "fixtures" / "hl7"


def oru(control_id: str, *, msh15: str = "", charset: str = "", obx_value: str = "5.6") -> bytes:
    return (
        f"MSH|^~\\&|ANALYSER|LAB|LIS|HOSP|20261122080000||ORU^R01|{control_id}|P|2.3.1|||{msh15}||{charset}\r"
        "PID|1||P000123||TEST^PATIENT\r"
        "OBR|1|BC20261122001||GLU\r"
        f"OBX|1|NM|GLU^Glucose||{obx_value}|mmol/L|3.9-6.1|N|||F\r"
    ).encode()


@pytest.fixture(autouse=True)
def fresh_peers() -> None:
    reset_memory_peers()


async def start(tmp_path: Path, **source: Any) -> Engine:
    conf = tmp_path / "conf"
    (conf / "channels").mkdir(parents=True)
    (conf / "hisbridge.yaml").write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"}, "outbox": {"poll_interval": 0.02},
    }))
    (conf / "channels" / "analyser.yaml").write_text(yaml.safe_dump({
        "content_type": "application/hl7-v2",
        "source": {"kind": "mllp", "config": {"port": 0, **source}},
        "destinations": [{"name": "lis", "adapter": "memory", "delivery": "async", "config": {"peer": "lis"}}],
    }))
    pm = create_plugin_manager()
    catalogue = Catalogue.build(pm)
    return await Engine.start(load_config(conf, catalogue=catalogue), pm=pm, catalogue=catalogue,
                              base_dir=base_dir(conf))


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    running = await start(tmp_path, receive_timeout=0.3, max_message_bytes=4096)
    yield running
    await running.stop()


class Device:
    """An analyser's end of the connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = MllpDecoder()
        self.pending: list[bytes] = []

    @classmethod
    async def connect(cls, engine: Engine) -> "Device":
        port = engine.sources[0].port  # type: ignore[attr-defined]
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def ack(self) -> dict[str, str]:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            assert data, "the listener closed the connection"
            self.pending.extend(self.decoder.feed(data))
        text = self.pending.pop(0).decode("gb18030")
        segments = {line[:3]: line.split("|") for line in text.split("\r") if line}
        return {"msa1": segments["MSA"][1], "msa2": segments["MSA"][2], "text": text}

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def test_two_messages_in_one_read_get_two_acks_after_they_are_stored(engine: Engine, tmp_path: Path) -> None:
    device = await Device.connect(engine)
    await device.send(encode(oru("C001")) + encode(oru("C002")))
    first, second = await device.ack(), await device.ack()
    await device.close()

    assert (first["msa1"], first["msa2"]) == ("AA", "C001")
    assert (second["msa1"], second["msa2"]) == ("AA", "C002")
    assert first["text"].startswith("MSH|^~\\&|LIS|HOSP|ANALYSER|LAB|")
    other_reader = await MessageStore.open(f"sqlite:///{tmp_path / 'store.db'}", migrate=False)
    try:
        stored = await other_reader.list_messages(channel="analyser")
        raws = [await other_reader.get_stage(view.id, "raw") for view in stored]
    finally:
        await other_reader.close()
    assert sorted(raw.body for raw in raws) == [oru("C001"), oru("C002")]


async def test_a_message_over_many_reads_with_junk_before_it(engine: Engine) -> None:
    device = await Device.connect(engine)
    framed = b"\r\nGARBAGE" + encode(oru("C003"))
    for index in range(0, len(framed), 7):
        await device.send(framed[index:index + 7])
        await asyncio.sleep(0)
    ack = await device.ack()
    await device.close()
    assert (ack["msa1"], ack["msa2"]) == ("AA", "C003")
    for _ in range(200):
        if memory_peer("lis").delivered:
            break
        await asyncio.sleep(0.02)
    assert [p.body for p in memory_peer("lis").delivered] == [oru("C003")]


async def test_enhanced_mode_requested_in_msh15_gets_a_commit_ack(engine: Engine) -> None:
    device = await Device.connect(engine)
    await device.send(encode(oru("C004", msh15="AL")))
    ack = await device.ack()
    await device.close()
    assert (ack["msa1"], ack["msa2"]) == ("CA", "C004")


async def test_oversized_message_is_rejected_and_the_connection_goes_on(engine: Engine) -> None:
    device = await Device.connect(engine)
    await device.send(encode(oru("C005", obx_value="9" * 5000)) + encode(oru("C006")))
    rejected, accepted = await device.ack(), await device.ack()
    await device.close()
    assert rejected["msa1"] == "AR" and "ERR" in rejected["text"] and "4096" in rejected["text"]
    assert (accepted["msa1"], accepted["msa2"]) == ("AA", "C006")
    [refused] = await engine.store.list_messages(channel="analyser", status="failed")
    assert (refused.party, refused.rule_id) == ("device", "core.input.device")
    assert "larger than 4096 bytes" in (refused.reason or "")
    kept = await engine.store.get_stage(refused.id, "raw")
    assert kept is not None and kept.body.startswith(b"MSH|^~\\&|ANALYSER") and b"C005" in kept.body


async def test_bytes_outside_a_block_are_kept_as_a_refusal_blamed_on_the_device(engine: Engine) -> None:
    device = await Device.connect(engine)
    await device.send(b"PROPRIETARY STATUS 42\r" + encode(oru("C008")))
    ack = await device.ack()
    await device.close()
    assert (ack["msa1"], ack["msa2"]) == ("AA", "C008")
    [refused] = await engine.store.list_messages(channel="analyser", status="failed")
    assert refused.party == "device" and "outside an MLLP block" in (refused.reason or "")
    kept = await engine.store.get_stage(refused.id, "raw")
    assert kept is not None and kept.body == b"PROPRIETARY STATUS 42\r"


async def test_a_block_that_never_ends_is_cut_off(engine: Engine) -> None:
    device = await Device.connect(engine)
    await device.send(b"\x0b" + oru("C007"))
    closed = await asyncio.wait_for(device.reader.read(), 5)
    assert closed == b""
    await device.close()


async def test_gb18030_bytes_are_stored_exactly_and_answered_in_kind(engine: Engine) -> None:
    message = (FIXTURES / "oru_gb18030.hl7").read_bytes()
    device = await Device.connect(engine)
    await device.send(encode(message))
    ack = await device.ack()
    await device.close()
    assert ack["msa1"] == "AA"
    stored = await engine.store.list_messages(channel="analyser")
    assert (await engine.store.get_stage(stored[0].id, "raw")).body == message
