"""The astm_tcp source in a real Engine over real sockets: stored transcripts, ACK after
store, NAK and retransmission, results delivered to the LIS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from engine.adapters.memory import memory_peer, reset_memory_peers
from engine.errors import StoreError
from engine.runtime import Engine
from plugins.lis_device.astm.frames import ACK, EOT, NAK, frames_for_message, scan_transcript
from plugins.lis_device.formats import AstmFormat
from plugins.lis_device.simulator.analyser import AstmAnalyser, Faults, transfers_of
from tests.plugins.lis_device.lis_engine import FAST_TIMERS, eventually, start_engine, stored_raws
from tests.plugins.lis_device.samples import fixture_bytes

RESULTS = (
    b"H|\\^&|||SYN-ANALYSER|||||LIS||P|LIS2-A2|20261122080000\r"
    b"P|1||SYN-PAT-01\rO|1|BC0001||^^^GLU|R\rR|1|^^^GLU|5.6|mmol/L|3.9 to 6.1|N||F\rL|1|N\r"
)


@pytest.fixture(autouse=True)
def fresh_peers() -> None:
    reset_memory_peers()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    running = await start_engine(tmp_path)
    yield running
    await running.stop()


async def connect(engine: Engine) -> AstmAnalyser:
    return await AstmAnalyser.connect("127.0.0.1", engine.sources[0].port, reply_timeout=5.0)  # type: ignore[attr-defined]


async def test_results_are_stored_as_the_byte_transcript_and_delivered(engine: Engine) -> None:
    analyser = await connect(engine)
    report = await analyser.send(frames_for_message(RESULTS))
    await analyser.close()

    assert report.completed and all(reply == [ACK] for reply in report.replies)
    await eventually(lambda: memory_peer("lis").delivered)
    [raw] = await stored_raws(engine)
    frames = b"".join(frames_for_message(RESULTS))
    assert raw.content_type == "application/x-astm"
    # ENQ, ACK, then each frame and its ACK; the last frame's ACK and the EOT follow the commit
    assert raw.body.startswith(b"\x05\x06" + frames_for_message(RESULTS)[0] + b"\x06")
    assert raw.body.endswith(frames_for_message(RESULTS)[-1])
    assert raw.body.replace(b"\x06", b"").replace(b"\x05", b"") == frames
    assert scan_transcript(raw.body).text == RESULTS
    assert dict(AstmFormat().flatten(raw.body))["R.4"] == "5.6"
    assert memory_peer("lis").delivered[0].body == raw.body


async def test_the_final_ack_waits_for_the_store(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    real_create = engine.store.create_message
    entered, release = asyncio.Event(), asyncio.Event()
    committed_at: list[float] = []

    async def slow_create(*args, **kwargs):  # type: ignore[no-untyped-def]
        entered.set()
        await release.wait()
        created = await real_create(*args, **kwargs)
        committed_at.append(asyncio.get_running_loop().time())
        return created

    monkeypatch.setattr(engine.store, "create_message", slow_create)
    analyser = await connect(engine)
    sending = asyncio.create_task(analyser.send(frames_for_message(RESULTS)))
    await asyncio.wait_for(entered.wait(), 5)
    assert await stored_raws(engine) == []
    assert not sending.done()  # still waiting for the L frame's reply
    release.set()
    report = await sending
    await analyser.close()

    assert report.replies[-1] == [ACK]
    final_ack_at = [at for direction, data, at in analyser.log if direction == "in"][-1]
    assert committed_at and final_ack_at >= committed_at[0]
    assert len(await stored_raws(engine)) == 1


async def test_a_failed_store_naks_the_l_frame_and_the_retransmission_is_stored_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create = engine.store.create_message
    calls = 0

    async def failing_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreError("database is locked")
        return await real_create(*args, **kwargs)

    monkeypatch.setattr(engine.store, "create_message", failing_once)
    analyser = await connect(engine)
    report = await analyser.send(frames_for_message(RESULTS))
    await analyser.close()

    assert report.completed
    assert report.replies[-1] == [NAK, ACK]
    assert all(reply == [ACK] for reply in report.replies[:-1])
    [raw] = await stored_raws(engine)
    last = frames_for_message(RESULTS)[-1]
    assert raw.body.endswith(last + b"\x15" + last)  # the NAKed try and the retransmission
    assert raw.body.count(b"\x15") == 1


async def test_a_bad_checksum_is_naked_and_the_retransmission_stored_once(engine: Engine) -> None:
    analyser = await connect(engine)
    report = await analyser.send(frames_for_message(RESULTS), Faults(bad_checksum=frozenset({2, 5})))
    await analyser.close()

    assert report.completed
    assert report.replies[1] == [NAK, ACK] and report.replies[4] == [NAK, ACK]
    await eventually(lambda: memory_peer("lis").delivered)
    [raw] = await stored_raws(engine)
    assert raw.body.count(b"\x15") == 2  # both refusals are part of the record
    assert len(memory_peer("lis").delivered) == 1


async def test_several_transfers_on_one_connection_and_a_frame_split_over_reads(engine: Engine) -> None:
    analyser = await connect(engine)
    etb_sample = fixture_bytes("astm", "results_etb_split_transcript.astm")
    for frames in transfers_of(etb_sample):
        assert (await analyser.send(frames)).completed
    frames = frames_for_message(RESULTS)
    analyser.writer.write(b"\x05")
    assert await analyser.read_byte() == ACK
    for frame in frames:
        for index in range(0, len(frame), 5):
            analyser.writer.write(frame[index : index + 5])
            await analyser.writer.drain()
            await asyncio.sleep(0)
        assert await analyser.read_byte() == ACK
    await analyser.write(bytes((EOT,)))
    await analyser.close()

    await eventually(lambda: len(memory_peer("lis").delivered) == 2)
    raws = await stored_raws(engine)
    assert [scan_transcript(raw.body).text for raw in raws] == [
        scan_transcript(etb_sample).text,
        RESULTS,
    ]


async def test_gb18030_text_is_kept_byte_exact(tmp_path: Path) -> None:
    running = await start_engine(tmp_path, charset="gb18030")
    try:
        message = RESULTS.replace(b"SYN-PAT-01", "测试^病人".encode("gb18030"))
        analyser = await connect(running)
        assert (await analyser.send(frames_for_message(message))).completed
        await analyser.close()
        [raw] = await stored_raws(running)
        assert scan_transcript(raw.body).text == message
    finally:
        await running.stop()


async def test_stopping_the_engine_mid_store_still_acknowledges_the_stored_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = await start_engine(tmp_path)
    real_create = running.store.create_message
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_create(*args, **kwargs):  # type: ignore[no-untyped-def]
        entered.set()
        await release.wait()
        return await real_create(*args, **kwargs)

    monkeypatch.setattr(running.store, "create_message", slow_create)
    analyser = await connect(running)
    sending = asyncio.create_task(analyser.send(frames_for_message(RESULTS)))
    await asyncio.wait_for(entered.wait(), 5)
    stopping = asyncio.create_task(running.stop())
    await asyncio.sleep(0)
    release.set()
    report = await sending
    await stopping
    await analyser.close()
    assert report.replies[-1] == [ACK]


async def test_a_store_slower_than_the_receiver_timer_still_ends_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = await start_engine(tmp_path, timers={**FAST_TIMERS, "receiver_idle": 0.2})
    real_create = running.store.create_message
    release = asyncio.Event()

    async def slow_create(*args, **kwargs):  # type: ignore[no-untyped-def]
        await release.wait()
        return await real_create(*args, **kwargs)

    monkeypatch.setattr(running.store, "create_message", slow_create)
    try:
        analyser = await connect(running)
        with capture_logs() as logs:
            sending = asyncio.create_task(analyser.send(frames_for_message(RESULTS)))
            await asyncio.sleep(0.4)  # longer than receiver_idle while the store is held
            release.set()
            assert (await sending).completed
            assert (await analyser.send(frames_for_message(RESULTS))).completed
            await analyser.close()
        assert not [
            e for e in logs if e["event"] in ("astm transfer aborted", "astm bytes outside a transfer refused")
        ]
        assert len(await stored_raws(running)) == 2
    finally:
        await running.stop()
