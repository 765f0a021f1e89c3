"""Helpers for yibao tests: what the engine does with one HIS request, and synthetic values.

People are synthetic: credential numbers are `FAKE-...` strings, never real ID numbers.
"""

from __future__ import annotations

from typing import Any

from engine.adapters.base import Wire
from engine.message import Payload
from plugins.yibao.adapter import YibaoAdapter

TIF_PAASID = "sim_paas"
TIF_TOKEN = "TESTTOKEN0123456789abcdefABCDEF01"
FIXMEDINS_CODE = "H44030400123"
FAKE_CERT_NO = "FAKE-CERT-0001"


async def call(adapter: YibaoAdapter, infno: str, input: dict[str, Any], **extra: Any) -> tuple[Any, Wire]:
    """What the engine does for one HIS request: transform, send on a fresh wire, map the reply."""
    wire = Wire()
    request = adapter.transform(Payload.from_json({"infno": infno, "input": input, **extra}))
    response = await adapter.send(request, wire)
    reply = adapter.transform_response(response)
    return (reply.json() if reply.content_type == "application/json" else reply.body), wire


def steps(wire: Wire) -> list[str]:
    return [str(record.detail.get("step")) for record in wire.records]
