"""An endpoint's unexpected exception becomes the JSON 500 and keeps the connection open."""

from __future__ import annotations

import asyncio
import json

from api_harness import serving
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.api.responses import shielded


async def broken(request: Request) -> Response:
    raise ZeroDivisionError("a bug")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").strip().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


async def test_two_failing_requests_on_one_keepalive_connection_both_get_json() -> None:
    app = Starlette(routes=[Route("/boom", shielded(broken))])
    async with serving(app) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for _ in range(2):
                writer.write(b"GET /boom HTTP/1.1\r\nHost: test\r\n\r\n")
                await writer.drain()
                status, headers, body = await read_response(reader)
                assert status == 500
                assert headers["content-type"] == "application/json"
                error = json.loads(body)["error"]
                assert error["code"] == "internal_error"
                assert "ZeroDivisionError" in error["reason"]
                assert "Traceback" not in body.decode()
        finally:
            writer.close()
            await writer.wait_closed()
