"""What the ASTM source refuses is stored, not only logged: an aborted transfer's transcript
(6 refused frames, the receiver timer, a restart), an oversized message's head and text
outside any transfer become failed messages blamed on the device (rule core.input.device),
with the raw bytes kept; the line keeps working. Over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.adapters.memory import reset_memory_peers
from engine.runtime import Engine
from engine.store.records import MessageView
from plugins.lis_device.astm.frames import ACK, EOT, NAK, frames_for_message, scan_transcript
from plugins.lis_device.simulator.analyser import AstmAnalyser, corrupt
from tests.plugins.lis_device.lis_engine import FAST_TIMERS, settled, start_engine
from tests.plugins.lis_device.samples import fixture_bytes

RESULTS = (
    b"H|\\^&|||SYN-ANALYSER|||||LIS||P|LIS2-A2|20261122080000\r"
    b"P|1||SYN-PAT-01\rO|1|BC0001||^^^GLU|R\rR|1|^^^GLU|5.6|mmol/L|3.9 to 6.1|N||F\rL|1|N\r"
)
PROPRIETARY = fixture_bytes("astm", "proprietary_not_astm.txt")


@pytest.fixture(autouse=True)
def fresh_peers() -> None:
    reset_memory_peers()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    running = await start_engine(tmp_path, timers={**FAST_TIMERS, "receiver_idle": 0.3}, noise_quiet=0.2)
    yield running
    await running.stop()


async def connect(engine: Engine) -> AstmAnalyser:
    return await AstmAnalyser.connect("127.0.0.1", engine.sources[0].port, reply_timeout=5.0)  # type: ignore[attr-defined]


async def raw_of(engine: Engine, view: MessageView) -> bytes:
    raw = await engine.store.get_stage(view.id, "raw")
    assert raw is not None
    return raw.body


def blamed_on_the_device(view: MessageView) -> bool:
    return (view.status, view.party, view.rule_id) == ("failed", "device", "core.input.device")


async def test_six_refused_frames_then_eot_are_stored_as_the_devices_failure(engine: Engine) -> None:
    frame = frames_for_message(RESULTS)[0]
    analyser = await connect(engine)
    try:
        await analyser.write(b"\x05")
        assert await analyser.read_byte() == ACK
        for _ in range(6):
            await analyser.write(corrupt(frame))
            assert await analyser.read_byte() == NAK
        await analyser.write(bytes((EOT,)))
        [view] = await settled(engine, "failed")
        # the line still takes the next message
        assert (await analyser.send(frames_for_message(RESULTS))).completed
    finally:
        await analyser.close()
    assert blamed_on_the_device(view) and "aborted" in (view.reason or "")
    transcript = await raw_of(engine, view)
    assert transcript == b"\x05\x06" + (corrupt(frame) + b"\x15") * 6 + b"\x04"
    [_, stored] = await settled(engine, "failed", "sent")
    assert stored.status == "sent"


async def test_a_device_falling_silent_mid_message_leaves_its_half_transfer(engine: Engine) -> None:
    frames = frames_for_message(RESULTS)
    analyser = await connect(engine)
    try:
        await analyser.write(b"\x05")
        assert await analyser.read_byte() == ACK
        await analyser.write(frames[0])
        assert await analyser.read_byte() == ACK
        [view] = await settled(engine, "failed")  # after the receiver timer (0.3 s)
    finally:
        await analyser.close()
    assert blamed_on_the_device(view) and "receiver timeout" in (view.reason or "")
    assert await raw_of(engine, view) == b"\x05\x06" + frames[0] + b"\x06"


async def test_proprietary_text_is_stored_whole_once_the_line_is_quiet(engine: Engine) -> None:
    analyser = await connect(engine)
    try:
        for piece in (PROPRIETARY[:7], PROPRIETARY[7:20], PROPRIETARY[20:]):  # as a slow line delivers it
            await analyser.write(piece)
        [view] = await settled(engine, "failed")
    finally:
        await analyser.close()
    assert blamed_on_the_device(view) and "outside any ASTM transfer" in (view.reason or "")
    assert view.content_type == "application/octet-stream"
    assert await raw_of(engine, view) == PROPRIETARY


async def test_proprietary_text_before_a_transfer_is_one_refusal_and_the_results_still_count(engine: Engine) -> None:
    analyser = await connect(engine)
    try:
        await analyser.write(PROPRIETARY)
        assert (await analyser.send(frames_for_message(RESULTS))).completed
        refused, stored = await settled(engine, "failed", "sent")
    finally:
        await analyser.close()
    assert blamed_on_the_device(refused) and await raw_of(engine, refused) == PROPRIETARY
    assert scan_transcript(await raw_of(engine, stored)).text == RESULTS


async def test_stray_trailers_and_late_eot_are_not_stored(engine: Engine) -> None:
    analyser = await connect(engine)
    try:
        await analyser.write(b"\r\n\x04\r\n")
        assert (await analyser.send(frames_for_message(RESULTS))).completed
        views = await settled(engine, "sent")
    finally:
        await analyser.close()
    assert len(views) == 1


async def test_an_oversized_message_keeps_its_head_as_the_devices_failure(tmp_path: Path) -> None:
    running = await start_engine(tmp_path, max_message_bytes=120)
    try:
        analyser = await connect(running)
        try:
            report = await analyser.send(frames_for_message(RESULTS))
            assert not report.completed and report.naks == 6
            [view] = await settled(running, "failed")
            assert (await analyser.send(frames_for_message(b"H|\\^&\rL|1|N\r"))).completed
        finally:
            await analyser.close()
        assert blamed_on_the_device(view)
        assert "larger than 120 bytes" in (view.reason or "")
        assert (await raw_of(running, view)).startswith(b"\x05\x06\x021H|")
        assert len(await settled(running, "failed", "sent")) == 2
    finally:
        await running.stop()
