"""Host query answered by a LIS order service over real HTTP (the http_json destination
against a local Starlette server), and "no orders" when that service fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.serving import LocalServer
from plugins.lis_device.astm.frames import frames_for_message
from plugins.lis_device.astm.queries import read_orders
from plugins.lis_device.astm.records import AstmMessage
from plugins.lis_device.simulator.analyser import AstmAnalyser
from tests.plugins.lis_device.lis_engine import start_engine

QUERY = b"H|\\^&|||SYN-HTTP|||||||RQ|1394-97\rQ|1|^BC-H7||||||||||O\rL|1|N\r"
KNOWN = {"BC-H7": ["CRP", "PCT"]}


def order_service(fail: bool) -> Starlette:
    async def orders(request: Request) -> JSONResponse:
        if fail:
            return JSONResponse({"error": "LIS database offline"}, status_code=503)
        asked = await request.json()
        found = [{"specimen_id": code, "tests": KNOWN[code]} for code in asked["barcodes"] if code in KNOWN]
        return JSONResponse({"orders": found})

    return Starlette(routes=[Route("/orders", orders, methods=["POST"])])


@pytest.mark.parametrize("fail", [False, True], ids=["answering", "failing"])
async def test_host_query_through_an_http_order_service(tmp_path: Path, fail: bool) -> None:
    async with LocalServer(order_service(fail)) as lis:
        engine = await start_engine(
            tmp_path,
            orders={"adapter": "http_json", "config": {"url": f"{lis.url}/orders", "timeout": 2.0}},
        )
        try:
            analyser = await AstmAnalyser.connect("127.0.0.1", engine.sources[0].port, reply_timeout=5.0)  # type: ignore[attr-defined]
            try:
                assert (await analyser.send(frames_for_message(QUERY))).completed
                download = AstmMessage.parse(await analyser.receive(timeout=5.0))
            finally:
                await analyser.close()
            [query] = await engine.store.list_messages(channel="analyser")
        finally:
            await engine.stop()
    if fail:
        assert download.get("L.3") == "I"
        assert query.status == "failed" and "503" in (query.reason or "")
    else:
        assert [(o.specimen_id, o.tests) for o in read_orders(download)] == [("BC-H7", ("CRP", "PCT"))]
        assert query.status == "replied"
