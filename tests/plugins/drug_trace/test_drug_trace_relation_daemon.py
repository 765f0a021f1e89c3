"""The drug_trace_relation channel inside a real daemon: HIS asks for the small-package
codes under a scanned case code and the simulated 码上放心 gateway answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from engine.daemon import Daemon
from plugins.drug_trace.simulator import RelationServer, RelationSimulator
from tests.e2e.harness import HIS_TOKEN, OPERATOR_TOKEN, his, running_daemon
from tests.plugins.drug_trace.trace_data import AMOXICILLIN_CASE_PREFIX, AMOXICILLIN_PREFIX, code

CHANNEL = "tracerelations"
APP_KEY = "23000001"
SECRET_ENV = "DRUG_TRACE_TEST_TOP_SECRET"
SECRET = "sim-top-secret"
CASE = code(AMOXICILLIN_CASE_PREFIX, 1)
BOXES = [code(AMOXICILLIN_PREFIX, serial) for serial in (31, 32)]


def write_conf(root: Path, gateway_url: str) -> Path:
    conf = root / "conf"
    (conf / "channels").mkdir(parents=True)
    daemon = {
        "store": {"url": f"sqlite:///{root / 'hisbridge.db'}"},
        "api": {"host": "127.0.0.1", "port": 0, "tokens": [
            {"name": "his", "role": "his", "token": {"$env": "E2E_HIS_TOKEN"}},
            {"name": "operator", "role": "operator", "token": {"$env": "E2E_OPERATOR_TOKEN"}},
        ]},
    }
    channel = {"destinations": [{
        "name": "alihealth", "adapter": "drug_trace_relation", "retry": {"attempts": 2, "initial_backoff": 0.05},
        "config": {"gateway_url": gateway_url, "app_key": APP_KEY, "app_secret": {"$env": SECRET_ENV},
                   "sign_method": "hmac", "ref_ent_id": "REFENT0001", "timeout": 5},
    }]}
    (conf / "hisbridge.yaml").write_text(yaml.safe_dump(daemon))
    (conf / "channels" / f"{CHANNEL}.yaml").write_text(yaml.safe_dump(channel))
    return conf


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_HIS_TOKEN", HIS_TOKEN)
    monkeypatch.setenv("E2E_OPERATOR_TOKEN", OPERATOR_TOKEN)
    monkeypatch.setenv(SECRET_ENV, SECRET)


@pytest.fixture
async def gateway() -> AsyncIterator[RelationServer]:
    simulator = RelationSimulator(app_key=APP_KEY, secret=SECRET)
    simulator.add_package(CASE, BOXES)
    async with RelationServer(simulator) as server:
        yield server


@pytest.fixture
async def daemon(tmp_path: Path, gateway: RelationServer) -> AsyncIterator[Daemon]:
    async with running_daemon(write_conf(tmp_path, gateway.gateway_url)) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


async def ask(client: httpx.AsyncClient, daemon: Daemon, code: str) -> httpx.Response:
    return await client.post(f"{daemon.url}/api/v1/channels/{CHANNEL}", json={"code": code}, headers=his())


async def test_a_case_code_is_expanded_through_the_daemon(
    daemon: Daemon, client: httpx.AsyncClient, gateway: RelationServer
) -> None:
    gateway.simulator.unavailable = 1  # the engine repeats the query: it is idempotent
    answer = await ask(client, daemon, CASE)
    assert answer.status_code == 200, answer.text
    assert answer.json()["small_codes"] == BOXES


async def test_a_malformed_or_unknown_code_is_his_input(
    daemon: Daemon, client: httpx.AsyncClient, gateway: RelationServer
) -> None:
    malformed = await ask(client, daemon, "12345")
    assert malformed.status_code == 422 and malformed.json()["error"]["field"] == "code"
    assert gateway.simulator.calls == 0
    unknown = await ask(client, daemon, code(AMOXICILLIN_PREFIX, 404))
    assert unknown.status_code == 422
    assert unknown.json()["error"]["party"] == "his" and "does not know" in unknown.json()["error"]["reason"]


async def test_a_refused_signature_is_blamed_on_our_credentials(
    daemon: Daemon, client: httpx.AsyncClient, gateway: RelationServer
) -> None:
    gateway.simulator.secret = "rotated-at-the-platform"
    refused = await ask(client, daemon, CASE)
    error = refused.json()["error"]
    assert (error["party"], error["rule_id"]) == ("engine", "drug_trace.engine.top_credentials")
    assert "error 25" in error["reason"]
