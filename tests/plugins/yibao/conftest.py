"""Fixtures for the yibao plugin: a real simulated centre on a socket and adapters pointed at it.

People are synthetic: credential numbers are `FAKE-...` strings, never real ID numbers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from engine.transports.http import HttpClients
from plugins.yibao.adapter import YibaoAdapter, YibaoConfig
from plugins.yibao.simulator import CentreSimulator, GatewayAuth, SimulatorServer
from tests.plugins.yibao.yibao_calls import FIXMEDINS_CODE, TIF_PAASID, TIF_TOKEN


@pytest.fixture
async def centre() -> AsyncIterator[SimulatorServer]:
    simulator = CentreSimulator(auth=GatewayAuth(scheme="tif", paasid=TIF_PAASID, token=TIF_TOKEN))
    async with SimulatorServer(simulator) as server:
        yield server


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
