"""Fixtures for the yibao plugin: a real simulated centre on a socket and adapters pointed at it.

People are synthetic: credential numbers are `FAKE-...` strings, never real ID numbers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from engine.adapters.base import Wire
from engine.message import Payload
from engine.transports.http import HttpClients
from plugins.yibao.adapter import YibaoAdapter, YibaoConfig
from plugins.yibao.simulator import CentreSimulator, GatewayAuth, SimulatorServer

TIF_PAASID = "sim_paas"
TIF_TOKEN = "TESTTOKEN0123456789abcdefABCDEF01"
FIXMEDINS_CODE = "H44030400123"
FAKE_CERT_NO = "FAKE-CERT-0001"


@pytest.fixture
async def centre() -> AsyncIterator[SimulatorServer]:
    simulator = CentreSimulator(auth=GatewayAuth(scheme="tif", paasid=TIF_PAASID, token=TIF_TOKEN))
    async with SimulatorServer(simulator) as server:
        yield server


@pytest.fixture
async def services() -> AsyncIterator[HttpClients]:
    clients = HttpClients()
    yield clients
    await clients.aclose()


def adapter_config(base_url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "base_url": base_url,
        "fixmedins_code": FIXMEDINS_CODE,
        "fixmedins_name": "模拟人民医院",
        "mdtrtarea_admvs": "440300",
        "recer_sys_code": "MBS_LOCAL",
        "operator": {"opter": "0153", "opter_name": "测试收费员"},
        "signing": {"scheme": "tif", "paasid": TIF_PAASID, "token": {"$env": "YIBAO_TEST_TIF_TOKEN"}},
        "timeout": 5.0,
    }
    config.update(overrides)
    return config


@pytest.fixture
async def make_adapter(
    centre: SimulatorServer, services: HttpClients, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., YibaoAdapter]]:
    monkeypatch.setenv("YIBAO_TEST_TIF_TOKEN", TIF_TOKEN)
    made: list[YibaoAdapter] = []

    def make(**overrides: Any) -> YibaoAdapter:
        adapter = YibaoAdapter(YibaoConfig.model_validate(adapter_config(centre.url, **overrides)), services)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()


@pytest.fixture
def adapter(make_adapter: Callable[..., YibaoAdapter]) -> YibaoAdapter:
    return make_adapter()


async def call(adapter: YibaoAdapter, infno: str, input: dict[str, Any], **extra: Any) -> tuple[Any, Wire]:
    """What the engine does for one HIS request: transform, send on a fresh wire, map the reply."""
    wire = Wire()
    request = adapter.transform(Payload.from_json({"infno": infno, "input": input, **extra}))
    response = await adapter.send(request, wire)
    reply = adapter.transform_response(response)
    return (reply.json() if reply.content_type == "application/json" else reply.body), wire


def steps(wire: Wire) -> list[str]:
    return [str(record.detail.get("step")) for record in wire.records]
