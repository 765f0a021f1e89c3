"""Every shared ASTM sample (and our own fixtures) replayed by the analyser simulator over
a real socket into a running Engine: each transfer stored byte for byte and delivered to
the LIS, each host query answered. The shared corpus skips when ../shared is absent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.adapters.memory import memory_peer, reset_memory_peers
from engine.message import Payload
from engine.runtime import Engine
from plugins.lis_device.astm.frames import ACK, scan_transcript
from plugins.lis_device.astm.records import AstmMessage
from plugins.lis_device.astm.results import extract_results
from plugins.lis_device.simulator.analyser import AstmAnalyser, transfers_of
from tests.plugins.lis_device.lis_engine import eventually, start_engine, stored_raws
from tests.plugins.lis_device.samples import FIXTURES, SHARED_SAMPLES, shared_sample_files

OWN = sorted((FIXTURES / "astm").glob("*.astm"))
SHARED = shared_sample_files("astm", ".astm")


@pytest.fixture(autouse=True)
def fresh_peers() -> None:
    reset_memory_peers()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    running = await start_engine(tmp_path, host_query_timeout=1.0)
    yield running
    await running.stop()


def is_query(frames: list[bytes]) -> bool:
    text = scan_transcript(b"".join(frames)).text
    return AstmMessage.parse(text).records_of("Q") != []


async def replay(engine: Engine, sample: bytes) -> tuple[list[bytes], list[AstmMessage]]:
    """Send every transfer of `sample`; returns the record text sent per stored message and
    the downloads the engine answered queries with."""
    memory_peer("orders").reply = Payload.from_json({"orders": []})
    analyser = await AstmAnalyser.connect("127.0.0.1", engine.sources[0].port, reply_timeout=5.0)  # type: ignore[attr-defined]
    stored_texts: list[bytes] = []
    downloads: list[AstmMessage] = []
    try:
        for frames in transfers_of(sample):
            report = await analyser.send(frames)
            assert report.completed, report
            assert all(replies[-1] == ACK for replies in report.replies)
            if is_query(frames):
                downloads.append(AstmMessage.parse(await analyser.receive(timeout=5.0)))
            else:
                stored_texts.append(b"".join(scan_transcript(b"".join(frames)).text.split(b"\n")))
    finally:
        await analyser.close()
    return stored_texts, downloads


async def check_corpus_file(engine: Engine, path: Path) -> None:
    sent, downloads = await replay(engine, path.read_bytes())
    raws = [raw for raw in await stored_raws(engine) if raw.content_type == "application/x-astm"]
    assert [scan_transcript(raw.body).text.replace(b"\n", b"") for raw in raws] == [
        text.replace(b"\n", b"") for text in sent
    ]
    await eventually(lambda: len(memory_peer("lis").delivered) == len(sent))
    for download in downloads:
        assert download.get("L.3") == "I"


@pytest.mark.parametrize("path", OWN, ids=[p.name for p in OWN])
async def test_own_fixture_over_tcp(engine: Engine, path: Path) -> None:
    await check_corpus_file(engine, path)


@pytest.mark.skipif(not SHARED, reason=f"shared ASTM samples absent ({SHARED_SAMPLES} not found beside the repo)")
@pytest.mark.parametrize("path", SHARED, ids=[p.name for p in SHARED])
async def test_shared_sample_over_tcp(engine: Engine, path: Path) -> None:
    await check_corpus_file(engine, path)


def shared(name: str) -> Path:
    path = SHARED_SAMPLES / "astm" / name
    if not path.is_file():
        pytest.skip(f"shared sample astm/{name} absent ({SHARED_SAMPLES} not found beside the repo)")
    return path


async def stored_results(engine: Engine) -> list[dict[str, str]]:
    rows = []
    for raw in await stored_raws(engine):
        batch = extract_results(AstmMessage.parse(scan_transcript(raw.body).text))
        rows += [
            {"code": r.test_code, "value": r.value, "units": r.units, "specimen": r.specimen_barcode}
            for r in batch.results
        ]
    return rows


async def test_architect_two_transfers_values(engine: Engine) -> None:
    await replay(engine, shared("abbott_architect_i1000sr_bhcg_frames.astm").read_bytes())
    rows = await stored_results(engine)
    assert len(await stored_raws(engine)) == 2
    assert {row["code"] for row in rows} == {"651"}
    assert rows[0]["specimen"] == "1379 levchenko"


async def test_beckman_dxh_values(engine: Engine) -> None:
    await replay(engine, shared("beckman_dxh_results_records.astm").read_bytes())
    rows = await stored_results(engine)
    by_code = {row["code"]: row for row in rows}
    assert (by_code["WBC"]["value"], by_code["WBC"]["units"]) == ("7.4", "10^9/L")
    assert by_code["HGB"]["value"].startswith("146")
    assert by_code["WBC"]["specimen"] == "000004287888"


async def test_mindray_host_query_gets_the_lis_orders(engine: Engine) -> None:
    sample = shared("mindray_cl_astm_host_query_rq_frames.astm").read_bytes()
    [frames] = transfers_of(sample)
    memory_peer("orders").reply = Payload.from_json({"orders": [{"specimen_id": "SAMPLE123", "tests": ["TSH", "FT4"]}]})
    analyser = await AstmAnalyser.connect("127.0.0.1", engine.sources[0].port, reply_timeout=5.0)  # type: ignore[attr-defined]
    try:
        assert (await analyser.send(frames)).completed
        download = AstmMessage.parse(await analyser.receive(timeout=5.0))
    finally:
        await analyser.close()
    assert download.get("O.3") == "SAMPLE123"
    assert [download.get("O.5(1).4"), download.get("O.5(2).4")] == ["TSH", "FT4"]
    assert download.get("H.10") == "Mindray"
