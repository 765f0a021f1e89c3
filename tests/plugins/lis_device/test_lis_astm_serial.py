"""astm_serial over a pseudo-terminal pair: pyserial opens the pty's slave end as the
analyser's serial port; the test plays the analyser on the master end."""

from __future__ import annotations

import os
import sys
import tty
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.adapters.memory import memory_peer, reset_memory_peers
from engine.message import Payload
from engine.runtime import Engine
from plugins.lis_device.astm.frames import ACK, NAK, frames_for_message, scan_transcript
from plugins.lis_device.astm.records import AstmMessage
from plugins.lis_device.astm.serial_port import byte_streams
from plugins.lis_device.simulator.analyser import AstmAnalyser, Faults
from tests.plugins.lis_device.lis_engine import eventually, settled, start_engine, stored_raws

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX only")

RESULTS = (
    "H|\\^&|||SYN-SERIAL\rP|1||SYN-PAT-11||测试^病人\rO|1|BC-S1||^^^HGB\rR|1|^^^HGB|131|g/L|115 to 150|N||F\rL|1|N\r"
).encode("gb18030")
QUERY = b"H|\\^&|||SYN-SERIAL|||||||RQ|1394-97\rQ|1|^BC-S2||||||||||O\rL|1|N\r"


@pytest.fixture(autouse=True)
def fresh_peers() -> None:
    reset_memory_peers()


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[tuple[Engine, AstmAnalyser]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    engine = await start_engine(
        tmp_path,
        "astm_serial",
        port=os.ttyname(slave),
        baudrate=9600,
        parity="E",
        charset="gb18030",
        reopen_interval=0.05,
        host_query_timeout=1.0,
        noise_quiet=0.2,
    )
    reader, writer, read_transport = await byte_streams(master)
    analyser = AstmAnalyser(reader, writer, reply_timeout=5.0)
    try:
        await eventually(engine.sources[0].opened.is_set)  # type: ignore[attr-defined]
        yield engine, analyser
    finally:
        await engine.stop()
        await analyser.close()
        read_transport.close()
        os.close(slave)
        os.close(master)


async def test_results_over_a_serial_line_with_a_bad_checksum(line: tuple[Engine, AstmAnalyser]) -> None:
    engine, analyser = line
    report = await analyser.send(frames_for_message(RESULTS), Faults(bad_checksum=frozenset({4})))

    assert report.completed
    assert report.replies[3] == [NAK, ACK] and report.replies[-1] == [ACK]
    await eventually(lambda: memory_peer("lis").delivered)
    [raw] = await stored_raws(engine)
    assert scan_transcript(raw.body).text.count("测试".encode("gb18030")) == 1
    assert raw.body.count(b"\x15") == 1


async def test_host_query_over_a_serial_line(line: tuple[Engine, AstmAnalyser]) -> None:
    engine, analyser = line
    memory_peer("orders").reply = Payload.from_json({"orders": [{"specimen_id": "BC-S2", "tests": ["HGB"]}]})
    assert (await analyser.send(frames_for_message(QUERY))).completed
    download = AstmMessage.parse(await analyser.receive(timeout=5.0))
    assert (download.get("O.3"), download.get("O.5.4")) == ("BC-S2", "HGB")


async def test_proprietary_text_on_the_serial_line_is_stored_as_the_devices_failure(
    line: tuple[Engine, AstmAnalyser],
) -> None:
    engine, analyser = line
    report = b"\x02SYN-EL  GLU   105 mg/dL\r\x03"
    await analyser.write(report)
    [view] = await settled(engine, "failed")
    assert (view.party, view.rule_id) == ("device", "core.input.device")
    raw = await engine.store.get_stage(view.id, "raw")
    assert raw is not None and raw.body == report
    assert (await analyser.send(frames_for_message(RESULTS))).completed
