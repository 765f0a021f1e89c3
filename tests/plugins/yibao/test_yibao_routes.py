"""`POST /api/v1/yibao/{infno}` on the engine's real API app, against the simulated centre."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from engine.api.app import create_app
from engine.catalogue import Catalogue
from engine.config.model import EngineConfig
from engine.plugin_manager import create_plugin_manager
from engine.runtime import Engine
from plugins.yibao.simulator import Fault, SimulatorServer
from tests.plugins.yibao.conftest import adapter_config
from tests.plugins.yibao.yibao_calls import FAKE_CERT_NO, TIF_TOKEN

HIS = {"Authorization": "Bearer his-token"}
PERSON = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO}}


@contextlib.asynccontextmanager
async def engine_api(
    centre: SimulatorServer, tmp_path: Path, breaker: dict[str, float]
) -> AsyncIterator[httpx.AsyncClient]:
    pm = create_plugin_manager()
    config = EngineConfig.model_validate({
        "store": {"url": f"sqlite:///{tmp_path / 'hisbridge.db'}"},
        "channels": {"insurance": {"name": "insurance", "destinations": [{
            "name": "centre", "adapter": "yibao", "retry": {"attempts": 1}, "breaker": breaker,
            "config": adapter_config(centre.url, timeout=1.0),
        }]}},
    })
    engine = await Engine.start(config, pm=pm, catalogue=Catalogue.build(pm), base_dir=tmp_path,
                                run_outbox=False, run_sources=False)
    app = create_app(engine, tokens=[("his", "his", "his-token")])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://engine") as client:
        client.engine = engine  # type: ignore[attr-defined]
        yield client
    await engine.stop()


@pytest.fixture
async def api(
    centre: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("YIBAO_TEST_TIF_TOKEN", TIF_TOKEN)
    async with engine_api(centre, tmp_path, {"fail_max": 5, "reset_timeout": 30}) as client:
        yield client


async def test_his_sends_only_the_input(api: httpx.AsyncClient, centre: SimulatorServer) -> None:
    answer = await api.post("/api/v1/yibao/1101", json=PERSON, headers=HIS)
    assert answer.status_code == 200
    assert answer.json()["output"]["baseinfo"]["certno"] == FAKE_CERT_NO
    assert answer.headers["X-Hisbridge-Message-Id"]
    assert centre.simulator.state.calls == ["9001", "1101"]


async def test_a_token_is_required(api: httpx.AsyncClient) -> None:
    assert (await api.post("/api/v1/yibao/1101", json=PERSON)).status_code == 401


async def test_missing_fields_are_named_with_a_422(api: httpx.AsyncClient, centre: SimulatorServer) -> None:
    answer = await api.post("/api/v1/yibao/2207", json={"data": {"mdtrt_id": "300000001"}},
                            params={"insuplc_admdvs": "440300"}, headers=HIS)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["party"] == "his" and "input.data.psn_no" in error["field"]
    assert centre.simulator.state.calls == []


async def test_a_centre_refusal_is_a_502_with_the_verdict(api: httpx.AsyncClient, centre: SimulatorServer) -> None:
    centre.simulator.inject(Fault("error", infno="1101", err_msg="系统异常，请稍后再试"))
    answer = await api.post("/api/v1/yibao/1101", json={"input": PERSON}, headers=HIS)
    assert answer.status_code == 502
    assert answer.json()["error"]["rule_id"] == "yibao.centre.system_error"


async def test_a_suspended_centre_answers_his_at_once(api: httpx.AsyncClient, centre: SimulatorServer) -> None:
    await api.engine.suspend("centre", reason="centre maintenance window", by="test")  # type: ignore[attr-defined]
    answer = await api.post("/api/v1/yibao/1101", json=PERSON, headers=HIS)
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "destination_unavailable" and error["state"] == "suspended"
    assert centre.simulator.state.calls == []


async def test_the_breaker_opens_answers_at_once_and_closes_after_a_good_probe(
    centre: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIBAO_TEST_TIF_TOKEN", TIF_TOKEN)
    reset_timeout = 0.3
    async with engine_api(centre, tmp_path, {"fail_max": 2, "reset_timeout": reset_timeout}) as api:
        assert (await api.post("/api/v1/yibao/1101", json=PERSON, headers=HIS)).status_code == 200
        centre.simulator.inject(Fault("http_status", infno="1101", status=502, count=2))
        failures = [await api.post("/api/v1/yibao/1101", json=PERSON, headers=HIS) for _ in range(2)]
        assert [f.status_code for f in failures] == [502, 502]
        calls_before = len(centre.simulator.state.calls)
        short = await api.post("/api/v1/yibao/1101", json=PERSON, headers=HIS)
        assert short.status_code == 503 and short.json()["error"]["state"] == "open"
        assert "Retry-After" in short.headers
        assert len(centre.simulator.state.calls) == calls_before  # the centre was not called
        await asyncio.sleep(reset_timeout * 1.5)
        probe = await api.post("/api/v1/yibao/1101", json=PERSON, headers=HIS)
        assert probe.status_code == 200
        breakers = {b.name: b.state for b in api.engine.breakers.states()}  # type: ignore[attr-defined]
        assert breakers["centre"] == "closed"
