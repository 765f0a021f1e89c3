"""The yibao adapter inside the real engine: stored stages, verdicts and HIS's answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.catalogue import Catalogue
from engine.config.model import EngineConfig
from engine.message import Payload
from engine.plugin_manager import create_plugin_manager
from engine.runtime import Engine
from plugins.yibao.simulator import Fault, SimulatorServer
from tests.plugins.yibao.conftest import adapter_config
from tests.plugins.yibao.yibao_calls import FAKE_CERT_NO, TIF_TOKEN

PERSON_QUERY = {"infno": "1101", "input": {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO}}}


@pytest.fixture
async def engine(centre: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Engine]:
    monkeypatch.setenv("YIBAO_TEST_TIF_TOKEN", TIF_TOKEN)
    pm = create_plugin_manager()
    config = EngineConfig.model_validate({
        "store": {"url": f"sqlite:///{tmp_path / 'hisbridge.db'}"},
        "channels": {"yibao": {"name": "yibao", "destinations": [{
            "name": "centre", "adapter": "yibao", "retry": {"attempts": 1},
            "config": adapter_config(centre.url),
        }]}},
    })
    running = await Engine.start(config, pm=pm, catalogue=Catalogue.build(pm), base_dir=tmp_path,
                                 run_outbox=False, run_sources=False)
    yield running
    await running.stop()


async def his_call(engine: Engine, body: dict[str, object]) -> tuple[str, dict[str, object], str]:
    outcome = await engine.call("yibao", Payload.from_json(body), caller="his")
    answer = outcome.reply.json() if outcome.reply is not None else outcome.error
    assert answer is not None
    return outcome.status, answer, outcome.message_id


async def test_a_query_is_answered_and_its_steps_stored(engine: Engine, centre: SimulatorServer) -> None:
    status, reply, message_id = await his_call(engine, PERSON_QUERY)
    assert status == "replied" and reply["infcode"] == 0
    view = await engine.store.get_message(message_id, with_stages=True)
    assert view is not None and view.business_keys["infno"] == "1101"
    sent = [stage for stage in view.stages if stage["name"] == "sent"]
    assert len(sent) == 2  # sign-in, then the call


async def test_missing_psn_no_is_his_fault_and_nothing_is_sent(engine: Engine, centre: SimulatorServer) -> None:
    status, error, _ = await his_call(engine, {"infno": "2207", "insuplc_admdvs": "440300",
                                                "input": {"data": {"mdtrt_id": "300000001"}}})
    assert status == "failed" and error["party"] == "his"
    assert "input.data.psn_no" in str(error["field"])
    assert centre.simulator.state.calls == []


async def test_a_centre_error_text_decides_the_party(engine: Engine, centre: SimulatorServer) -> None:
    centre.simulator.inject(Fault("error", infno="1101", err_msg="就诊凭证编号不能为空"))
    status, error, message_id = await his_call(engine, PERSON_QUERY)
    assert status == "failed"
    assert (error["party"], error["rule_id"]) == ("his", "yibao.his.no_credential_number")
    view = await engine.store.get_message(message_id)
    assert view is not None and view.rule_id == "yibao.his.no_credential_number"


async def test_a_lost_settlement_reaches_his_as_not_settled(engine: Engine, centre: SimulatorServer) -> None:
    _, person, _ = await his_call(engine, PERSON_QUERY)
    psn_no = person["output"]["baseinfo"]["psn_no"]
    _, visit, _ = await his_call(engine, {"infno": "2201", "insuplc_admdvs": "440300", "input": {"data": {
        "psn_no": psn_no, "insutype": "310", "begntime": "2026-11-01 09:00:00", "mdtrt_cert_type": "02",
        "mdtrt_cert_no": FAKE_CERT_NO, "ipt_otp_no": "MZ1", "atddr_no": "D1", "dr_name": "测试医生",
        "dept_code": "A01", "dept_name": "内科", "caty": "A03"}}})
    centre.simulator.inject(Fault("drop", infno="2207"))
    status, error, message_id = await his_call(engine, {"infno": "2207", "insuplc_admdvs": "440300", "input": {
        "data": {"psn_no": psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO, "med_type": "11",
                 "medfee_sumamt": 30.0, "psn_setlway": "01", "mdtrt_id": visit["output"]["data"]["mdtrt_id"],
                 "chrg_bchno": "CB1", "insutype": "310", "acct_used_flag": "0"}}})
    assert status == "failed"
    assert (error["party"], error["rule_id"]) == ("network", "yibao.settlement.reversed")
    assert error["condition"] == "settlement_reversed" and "did not happen" in error["reason"]
    assert [s.status for s in centre.simulator.state.settlements.values()] == ["reversed"]
    view = await engine.store.get_message(message_id, with_stages=True)
    assert view is not None
    sent = [stage for stage in view.stages if stage["name"] == "sent"]
    answered = [stage for stage in view.stages if stage["name"] == "response_raw"]
    assert len(sent) == 2 and len(answered) == 1  # the lost 2207, then the answered 2601
