"""Results from analysers (HL7 over MLLP, ASTM over TCP) reach the LIS with its item codes,
through a real HTTP LIS and through the intermediate table (SQLite; PostgreSQL when
HISBRIDGE_TEST_DATABASE_URL is set); an unmapped code fails visibly on the engine's side
and is delivered by a replay once the code table is fixed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.adapters.base import Wire
from engine.message import Payload
from engine.runtime import Engine
from engine.serving import LocalServer
from plugins.lis_device.astm.frames import frames_for_message
from plugins.lis_device.hl7.reader import Hl7Message
from plugins.lis_device.lis_table import LisTableAdapter, LisTableConfig
from plugins.lis_device.simulator.analyser import AstmAnalyser
from plugins.lis_device.simulator.hl7_analyser import Hl7Analyser
from tests.plugins.lis_device.lis_engine import FAST_TIMERS, eventually, settled, start_channel
from tests.plugins.lis_device.test_lis_normalise import ASTM_RECORDS, HL7_ORU
from tests.support.postgres import postgres_schema

CODES = "test_code,lis_code,lis_name\nGLU,1001,葡萄糖\nK,1002,钾\n"


class Lis:
    """A LIS stand-in that stores what it is POSTed."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    def app(self) -> Starlette:
        async def results(request: Request) -> JSONResponse:
            self.received.append(await request.json())
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/results", results, methods=["POST"])])


def write_codes(tmp_path: Path, text: str = CODES) -> str:
    folder = tmp_path / "conf" / "lis_codes"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "syn.csv").write_text(text, encoding="utf-8")
    return "conf/lis_codes/syn.csv"


def channel(kind: str, destination: dict[str, Any]) -> dict[str, Any]:
    hl7 = kind == "mllp_lis"
    return {
        "content_type": "application/hl7-v2" if hl7 else "application/x-astm",
        "source": {"kind": kind, "config": {"port": 0} if hl7 else {"port": 0, "timers": FAST_TIMERS}},
        "destinations": [
            {"name": "lis", "filter": {"path": "MSH-9.1" if hl7 else "H.2", "regex": "." if not hl7 else "^ORU$"},
             "retry": {"attempts": 1}, **destination},
        ],
    }


async def send_hl7(engine: Engine, message: bytes = HL7_ORU) -> Hl7Message:
    analyser = await Hl7Analyser.connect("127.0.0.1", engine.sources[0].port, timeout=5.0)  # type: ignore[attr-defined]
    try:
        return Hl7Message.parse(await analyser.send(message))
    finally:
        await analyser.close()


async def send_astm(engine: Engine, records: bytes = ASTM_RECORDS) -> bool:
    analyser = await AstmAnalyser.connect("127.0.0.1", engine.sources[0].port, reply_timeout=5.0)  # type: ignore[attr-defined]
    try:
        return (await analyser.send(frames_for_message(records))).completed
    finally:
        await analyser.close()


@pytest.mark.parametrize("kind", ["mllp_lis", "astm_tcp"])
async def test_results_reach_an_http_lis_with_item_codes(tmp_path: Path, kind: str) -> None:
    lis = Lis()
    codes = write_codes(tmp_path)
    async with LocalServer(lis.app()) as server:
        destination = {"adapter": "lis_http", "config": {"url": f"{server.url}/results", "codes": codes}}
        engine = await start_channel(tmp_path, channel(kind, destination))
        try:
            if kind == "mllp_lis":
                ack = await send_hl7(engine)
                assert ack.get("MSA-1") == "AA"
            else:
                assert await send_astm(engine)
            await eventually(lambda: len(lis.received) == 1)
            [view] = await settled(engine, "sent", "replied")
        finally:
            await engine.stop()
    [document] = lis.received
    first = document["results"][0]
    assert (first["lis_code"], first["lis_name"]) == ("1001", "葡萄糖")
    if kind == "mllp_lis":
        assert (first["value"], document["specimens"]) == ("5.12", ["BC-N001"])
    else:
        assert [r["qc"] for r in document["results"]] == [False, True]
    assert view.business_keys


async def test_an_unmapped_code_fails_on_the_engine_side_and_a_replay_delivers_it(tmp_path: Path) -> None:
    lis = Lis()
    codes = write_codes(tmp_path, "test_code,lis_code\nGLU,1001\n")
    async with LocalServer(lis.app()) as server:
        spec = channel("mllp_lis", {"adapter": "lis_http", "config": {"url": f"{server.url}/results", "codes": codes}})
        engine = await start_channel(tmp_path, spec)
        try:
            ack = await send_hl7(engine)
            [view] = await engine.store.list_messages(channel="analyser")
        finally:
            await engine.stop()
        # the device is not blamed: its message was fine and is stored
        assert ack.get("MSA-1") == "AA"
        assert (view.status, view.party, view.rule_id) == ("failed", "engine", "lis_device.unmapped_test_code")
        assert "K" in (view.reason or "") and lis.received == []

        write_codes(tmp_path)
        engine = await start_channel(tmp_path, spec)
        try:
            await engine.replay(view.id, by="test")
            await eventually(lambda: len(lis.received) == 1)
        finally:
            await engine.stop()
    assert [r["lis_code"] for r in lis.received[0]["results"]] == ["1001", "1002"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lis.db'}"
        return
    base = os.environ.get("HISBRIDGE_TEST_DATABASE_URL")
    if not base:
        pytest.skip("HISBRIDGE_TEST_DATABASE_URL is not set")
    with postgres_schema(base) as url:
        yield url


def read_rows(url: str, table: str = "LIS_RESULT") -> list[dict[str, Any]]:
    database = sa.create_engine(url)
    try:
        with database.connect() as connection:
            rows = connection.execute(sa.text(f'SELECT * FROM "{table}" ORDER BY id')).mappings().all()
    finally:
        database.dispose()
    return [dict(row) for row in rows]


COLUMNS = {"lis_code": "ITEM_CODE", "value": "RESULT", "specimen_barcode": "BARCODE"}


async def test_results_are_inserted_into_the_intermediate_table(tmp_path: Path, database_url: str) -> None:
    codes = write_codes(tmp_path)
    destination = {
        "adapter": "lis_table",
        "config": {
            "url": database_url, "table": "LIS_RESULT", "columns": COLUMNS, "codes": codes, "create_table": True,
        },
    }
    engine = await start_channel(tmp_path, channel("mllp_lis", destination))
    try:
        assert (await send_hl7(engine)).get("MSA-1") == "AA"
        await settled(engine, "sent", "replied")
    finally:
        await engine.stop()
    rows = read_rows(database_url)
    assert [(r["BARCODE"], r["ITEM_CODE"], r["RESULT"], r["test_code"], r["taken"]) for r in rows] == [
        ("BC-N001", "1001", "5.12", "GLU", 0),
        ("BC-N001", "1002", "5.9", "K", 0),
    ]
    assert rows[0]["numeric_value"] == pytest.approx(5.12) and rows[1]["abnormal_flags"] == "H~A"


async def test_a_resend_inserts_no_row_twice(tmp_path: Path, database_url: str) -> None:
    config = LisTableConfig.model_validate(
        {"url": database_url, "table": "LIS_RESULT", "codes": write_codes(tmp_path), "create_table": True},
        context={"base_dir": tmp_path},
    )
    adapter = LisTableAdapter(config, services=None)  # type: ignore[arg-type]  # needs no engine services
    try:
        request = adapter.transform(Payload(HL7_ORU, "application/hl7-v2"))
        first = await adapter.send(request, Wire())
        again = await adapter.send(request, Wire())
    finally:
        await adapter.aclose()
    assert (json.loads(first.body)["inserted"], json.loads(again.body)["inserted"]) == (2, 0)
    assert len(read_rows(database_url)) == 2


async def test_a_table_the_lis_shaped_differently_is_the_lis_sides_refusal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lis.db'}"
    database = sa.create_engine(url)
    with database.begin() as connection:
        connection.execute(sa.text('CREATE TABLE "LIS_RESULT" (id INTEGER PRIMARY KEY, other TEXT)'))
    database.dispose()
    config = {"url": url, "table": "LIS_RESULT", "codes": write_codes(tmp_path)}
    destination = {"adapter": "lis_table", "config": config}
    engine = await start_channel(tmp_path, channel("mllp_lis", destination))
    try:
        await send_hl7(engine)
        [view] = await settled(engine, "failed", "dead")
    finally:
        await engine.stop()
    assert (view.party, view.rule_id) == ("third_party", "lis_device.lis_table_refused")
