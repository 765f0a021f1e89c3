"""`hisbridge simulate analyser` against a running engine: the real command in a child
process for ASTM (with a fault injected), and the HL7 replay into the MLLP listener."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from engine.adapters.memory import memory_peer, reset_memory_peers
from engine.message import Payload
from plugins.lis_device.simulator.cli import replay_hl7
from tests.plugins.lis_device.lis_engine import start_engine, stored_raws
from tests.plugins.lis_device.samples import FIXTURES, shared_sample

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def fresh_peers() -> None:
    reset_memory_peers()


async def test_the_cli_replays_an_astm_query_with_a_bad_checksum(tmp_path: Path) -> None:
    engine = await start_engine(tmp_path, host_query_timeout=1.0)
    memory_peer("orders").reply = Payload.from_json({"orders": [{"specimen_id": "BC240313001", "tests": ["GLU"]}]})
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from engine.cli import main; main()",
            "simulate",
            "analyser",
            "--protocol",
            "astm",
            "--file",
            str(FIXTURES / "astm" / "host_query_two_barcodes_records.astm"),
            "--port",
            str(engine.sources[0].port),
            "--bad-checksum",
            "2",
            "--timeout",
            "5",  # type: ignore[attr-defined]
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(child.communicate(), 60)
    finally:
        await engine.stop()
    assert child.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert "transfer 1: 3 frames accepted, 1 NAK" in lines
    assert "transfer 1: host answered HPOL (L-3 N)" in lines


async def test_hl7_replay_into_the_mllp_listener(tmp_path: Path) -> None:
    engine = await start_engine(tmp_path, "mllp")
    message = (
        b"MSH|^~\\&|SYN|LAB|LIS|HOSP|20261122080000||ORU^R01|SIM1|P|2.3.1\r"
        b"PID|1||SYN-PAT-21\rOBR|1|BC-H1||GLU\rOBX|1|NM|GLU||5.1|mmol/L|||||F\r"
    )
    try:
        lines = await replay_hl7(message, "127.0.0.1", engine.sources[0].port, timeout=5.0)  # type: ignore[attr-defined]
        [raw] = await stored_raws(engine)
    finally:
        await engine.stop()
    assert lines == ["message 1: AA"]
    assert raw.body == message


async def test_hl7_replay_of_the_mindray_query_gets_qck_and_dsr(tmp_path: Path) -> None:
    query = shared_sample("hl7", "mindray_cl_qry_q02_barcode_manual.mllp")
    memory_peer("orders").reply = Payload.from_json({"orders": [{"specimen_id": "0019", "tests": ["1", "2", "5"]}]})
    engine = await start_engine(tmp_path, "mllp_lis", host_query_timeout=2.0)
    try:
        lines = await replay_hl7(query, "127.0.0.1", engine.sources[0].port, timeout=5.0)  # type: ignore[attr-defined]
    finally:
        await engine.stop()
    assert lines == ["message 1: QCK OK, 1 DSR"]
