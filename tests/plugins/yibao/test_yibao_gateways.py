"""The Zhejiang (HMAC-SM3) and Jilin (OAuth2 + SM4 + SM2) schemes against the simulated gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from engine.errors import PermanentError
from engine.transports.http import HttpClients
from plugins.yibao.adapter import YibaoAdapter, YibaoConfig
from plugins.yibao.centre import CALL_PATH, ZHEJIANG_SIGN_IN_PATH, ZHEJIANG_SIGN_OUT_PATH
from plugins.yibao.signing.gm import sm2_public_key
from plugins.yibao.simulator import CentreSimulator, GatewayAuth, SimulatorServer
from tests.plugins.yibao.conftest import adapter_config
from tests.plugins.yibao.yibao_calls import FAKE_CERT_NO, FIXMEDINS_CODE, call, steps

CLIENT_ID = "CLIENT0123456789"
SM2_KEY_HEX = "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8"
PERSON_QUERY = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO}}

AUTHS = {
    "zhejiang_sm3": GatewayAuth(scheme="zhejiang_sm3", key=FIXMEDINS_CODE, secret="zj-secret"),
    "jilin": GatewayAuth(scheme="jilin", client_id=CLIENT_ID, client_secret="jl-client-secret", username="his01",
                         password="jl-password", sm2_public_key=sm2_public_key(bytes.fromhex(SM2_KEY_HEX))),
}
SIGNING = {
    "zhejiang_sm3": {"scheme": "zhejiang_sm3", "secret": {"$env": "YIBAO_TEST_ZJ_SECRET"}},
    "jilin": {"scheme": "jilin", "client_id": CLIENT_ID, "client_secret": {"$env": "YIBAO_TEST_JL_CLIENT_SECRET"},
              "username": "his01", "password": {"$env": "YIBAO_TEST_JL_PASSWORD"},
              "sm2_private_key": {"$env": "YIBAO_TEST_JL_SM2_KEY"}},
}


@pytest.fixture
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YIBAO_TEST_ZJ_SECRET", "zj-secret")
    monkeypatch.setenv("YIBAO_TEST_JL_CLIENT_SECRET", "jl-client-secret")
    monkeypatch.setenv("YIBAO_TEST_JL_PASSWORD", "jl-password")
    monkeypatch.setenv("YIBAO_TEST_JL_SM2_KEY", SM2_KEY_HEX)


@pytest.fixture
async def gateway(
    request: pytest.FixtureRequest, secrets_in_env: None
) -> AsyncIterator[tuple[SimulatorServer, Callable[..., YibaoAdapter]]]:
    scheme = request.param
    clients = HttpClients()
    made: list[YibaoAdapter] = []
    async with SimulatorServer(CentreSimulator(auth=AUTHS[scheme])) as server:

        def make(**signing: Any) -> YibaoAdapter:
            config = adapter_config(server.url, signing={**SIGNING[scheme], **signing})
            adapter = YibaoAdapter(YibaoConfig.model_validate(config), clients)
            made.append(adapter)
            return adapter

        yield server, make
        for adapter in made:
            await adapter.aclose()
    await clients.aclose()


@pytest.mark.parametrize("gateway", ["zhejiang_sm3"], indirect=True)
async def test_zhejiang_calls_pass_the_gateway(gateway: tuple[SimulatorServer, Callable[..., YibaoAdapter]]) -> None:
    _, make = gateway
    reply, wire = await call(make(), "1101", PERSON_QUERY)
    assert reply["output"]["baseinfo"]["certno"] == FAKE_CERT_NO
    sent = wire.records[-1].sent
    assert sent.headers["x-ca-key"] == FIXMEDINS_CODE and ":" in sent.headers["x-ca-signature"]


@pytest.mark.parametrize("gateway", ["zhejiang_sm3"], indirect=True)
async def test_zhejiang_wrong_secret_is_refused(
    gateway: tuple[SimulatorServer, Callable[..., YibaoAdapter]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIBAO_TEST_ZJ_WRONG", "wrong")
    _, make = gateway
    with pytest.raises(PermanentError) as caught:
        await call(make(secret={"$env": "YIBAO_TEST_ZJ_WRONG"}), "1101", PERSON_QUERY)
    assert caught.value.detail["condition"] == "gateway_rejected"


@pytest.mark.parametrize("gateway", ["jilin"], indirect=True)
async def test_jilin_encrypts_on_the_wire_and_decrypts_the_answer(
    gateway: tuple[SimulatorServer, Callable[..., YibaoAdapter]]
) -> None:
    _, make = gateway
    reply, wire = await call(make(), "1101", PERSON_QUERY)
    assert reply["output"]["baseinfo"]["certno"] == FAKE_CERT_NO
    sent, answered = wire.records[-1].sent, wire.records[-1].response
    assert FAKE_CERT_NO.encode() not in sent.body and FAKE_CERT_NO.encode() not in answered.body
    assert sent.json()["encType"] == "SM4" and sent.json()["signtype"] == "SM2"
    assert sent.headers["authorization"] == "<redacted>"


@pytest.mark.parametrize("gateway", ["jilin"], indirect=True)
async def test_jilin_fetches_a_new_token_when_the_old_one_is_refused(
    gateway: tuple[SimulatorServer, Callable[..., YibaoAdapter]]
) -> None:
    server, make = gateway
    adapter = make()
    await call(adapter, "1101", PERSON_QUERY)
    server.simulator.auth.issued_tokens.clear()
    reply, wire = await call(adapter, "1101", PERSON_QUERY)
    assert reply["infcode"] == 0
    assert steps(wire) == ["call", "renew_credentials"]
    assert wire.records[0].status_code == 401 and wire.records[1].status_code == 200


@pytest.mark.parametrize("gateway", ["jilin"], indirect=True)
async def test_jilin_wrong_password_is_our_configuration(
    gateway: tuple[SimulatorServer, Callable[..., YibaoAdapter]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIBAO_TEST_JL_WRONG", "wrong")
    _, make = gateway
    with pytest.raises(PermanentError) as caught:
        await call(make(password={"$env": "YIBAO_TEST_JL_WRONG"}), "1101", PERSON_QUERY)
    assert caught.value.detail["condition"] == "oauth_token" and caught.value.detail["centre"] == "yibao"


@pytest.mark.parametrize("gateway", ["zhejiang_sm3"], indirect=True)
async def test_zhejiang_signs_in_and_out_at_its_own_service(
    gateway: tuple[SimulatorServer, Callable[..., YibaoAdapter]]
) -> None:
    server, _ = gateway
    paths = {"sign_in": ZHEJIANG_SIGN_IN_PATH, "sign_out": ZHEJIANG_SIGN_OUT_PATH}
    clients = HttpClients()
    adapter = YibaoAdapter(YibaoConfig.model_validate(
        adapter_config(server.url, signing=SIGNING["zhejiang_sm3"], recer_sys_code="FSI_LOCAL", paths=paths)
    ), clients)
    try:
        reply, _ = await call(adapter, "1101", PERSON_QUERY)
    finally:
        await adapter.aclose()  # signs out
        await clients.aclose()

    assert reply["output"]["baseinfo"]["certno"] == FAKE_CERT_NO
    assert server.simulator.state.call_paths == [
        (ZHEJIANG_SIGN_IN_PATH, "9001"), (CALL_PATH, "1101"), (ZHEJIANG_SIGN_OUT_PATH, "9002"),
    ]


def test_an_unknown_path_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="unknown paths: signin .*known: call, download, sign_in, sign_out"):
        YibaoConfig.model_validate(adapter_config("http://127.0.0.1:9", paths={"signin": "/x"}))
