"""The adapter against the simulated centre over real sockets: sign-in, calls, failures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from engine.adapters.base import Wire
from engine.errors import InputError, OutcomeUnknownError, PermanentError, TransientError
from engine.message import Payload
from plugins.yibao.adapter import YibaoAdapter
from plugins.yibao.response import CentreRejected
from plugins.yibao.session import SignInSessions
from plugins.yibao.settlement import SettlementReversed, SettlementUnresolved
from plugins.yibao.simulator import Fault, SimulatorServer
from tests.plugins.yibao.yibao_calls import FAKE_CERT_NO, call, steps

PERSON_QUERY = {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO}}


async def open_visit(adapter: YibaoAdapter) -> tuple[str, str, str]:
    """1101 then 2201: the person's psn_no, insured area and a new mdtrt_id."""
    person, _ = await call(adapter, "1101", PERSON_QUERY)
    psn_no = person["output"]["baseinfo"]["psn_no"]
    area = person["output"]["insuinfo"][0]["insuplc_admdvs"]
    visit, _ = await call(adapter, "2201", {"data": {
        "psn_no": psn_no, "insutype": "310", "begntime": "2026-11-01 09:00:00", "mdtrt_cert_type": "02",
        "mdtrt_cert_no": FAKE_CERT_NO, "ipt_otp_no": "MZ0001", "atddr_no": "D001", "dr_name": "测试医生",
        "dept_code": "A01", "dept_name": "内科", "caty": "A03"}}, insuplc_admdvs=area)
    return psn_no, area, visit["output"]["data"]["mdtrt_id"]


def settle_input(psn_no: str, mdtrt_id: str, amount: float = 125.5) -> dict[str, object]:
    return {"data": {"psn_no": psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO, "med_type": "11",
                     "medfee_sumamt": amount, "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": "CB0001",
                     "insutype": "310", "acct_used_flag": "1"}}


async def test_sign_in_happens_once_and_is_reused(adapter: YibaoAdapter, centre: SimulatorServer) -> None:
    first, wire = await call(adapter, "1101", PERSON_QUERY)
    second, again = await call(adapter, "1101", PERSON_QUERY)
    assert centre.simulator.state.calls == ["9001", "1101", "1101"]
    assert steps(wire) == ["sign_in", "call"] and steps(again) == ["call"]
    assert first["infcode"] == 0 and first["output"]["baseinfo"]["psn_no"] == second["output"]["baseinfo"]["psn_no"]
    sent = wire.records[1].sent
    assert sent is not None and sent.json()["sign_no"] == adapter.sessions.current(adapter.default_operator).sign_no
    assert set(sent.headers) >= {"x-tif-paasid", "x-tif-timestamp", "x-tif-nonce", "x-tif-signature"}


async def test_a_new_day_needs_a_new_sign_in(adapter: YibaoAdapter, centre: SimulatorServer) -> None:
    today = [datetime(2026, 11, 1, 23, 59, 0)]
    adapter.sessions = SignInSessions(adapter.centre, mac="00-00-00-00-00-00", ip="127.0.0.1", clock=lambda: today[0])
    await call(adapter, "1101", PERSON_QUERY)
    first = adapter.sessions.current(adapter.default_operator)
    today[0] = datetime(2026, 11, 2, 0, 0, 1)
    assert adapter.sessions.current(adapter.default_operator) is None
    _, wire = await call(adapter, "1101", PERSON_QUERY)
    assert steps(wire) == ["sign_in", "call"]
    assert adapter.sessions.current(adapter.default_operator).sign_no != first.sign_no
    assert centre.simulator.state.calls.count("9001") == 2


async def test_each_operator_signs_in_for_themselves(adapter: YibaoAdapter, centre: SimulatorServer) -> None:
    await call(adapter, "1101", PERSON_QUERY)
    await call(adapter, "1101", PERSON_QUERY, opter="0200", opter_name="另一收费员")
    assert centre.simulator.state.calls.count("9001") == 2


async def test_an_invalid_sign_in_is_renewed_and_the_call_made_again(
    adapter: YibaoAdapter, centre: SimulatorServer
) -> None:
    await call(adapter, "1101", PERSON_QUERY)
    old_sign_no = adapter.sessions.current(adapter.default_operator).sign_no
    centre.simulator.inject(Fault("sign_in_invalid", infno="1101"))
    reply, wire = await call(adapter, "1101", PERSON_QUERY)
    assert reply["infcode"] == 0
    assert steps(wire) == ["call", "sign_in", "call_after_sign_in"]
    assert adapter.sessions.current(adapter.default_operator).sign_no != old_sign_no
    refused = wire.records[0].response
    assert refused is not None and "签到信息已失效" in refused.text()
    assert wire.records[0].sent.json()["msgid"] != wire.records[2].sent.json()["msgid"]


async def test_outpatient_settlement_keeps_the_centres_invariants(
    adapter: YibaoAdapter, centre: SimulatorServer
) -> None:
    psn_no, area, mdtrt_id = await open_visit(adapter)
    reply, wire = await call(adapter, "2207", settle_input(psn_no, mdtrt_id), insuplc_admdvs=area)
    info = reply["output"]["setlinfo"]
    assert reply["infno"] == "2207" and len(reply["msgid"]) == 30
    assert info["medins_setl_id"] == reply["msgid"]
    assert info["medfee_sumamt"] == pytest.approx(info["fund_pay_sumamt"] + info["psn_part_amt"])
    assert info["psn_part_amt"] == pytest.approx(info["acct_pay"] + info["psn_cash_pay"])
    assert centre.simulator.state.settlements[info["setl_id"]].status == "active"
    assert wire.records[-1].ack_code == "0"


async def test_settlement_whose_answer_is_lost_is_reversed_and_his_told(
    adapter: YibaoAdapter, centre: SimulatorServer
) -> None:
    psn_no, area, mdtrt_id = await open_visit(adapter)
    centre.simulator.inject(Fault("drop", infno="2207"))
    wire = Wire()
    request = adapter.transform(Payload.from_json({"infno": "2207", "input": settle_input(psn_no, mdtrt_id),
                                                   "insuplc_admdvs": area}))
    with pytest.raises(SettlementReversed) as caught:
        await adapter.send(request, wire)
    msgid = request.json()["msgid"]
    settlement = next(s for s in centre.simulator.state.settlements.values() if s.msgid == msgid)
    assert settlement.status == "reversed"  # the centre had settled; the reversal undid it
    assert centre.simulator.state.calls.count("2601") == 1
    assert steps(wire) == ["call", "reversal"]
    lost, reversal = wire.records
    assert lost.sent is not None and lost.response is None
    assert reversal.sent.json()["input"] == {"data": {"psn_no": psn_no, "omsgid": msgid, "oinfno": "2207"}}
    assert reversal.response is not None and reversal.ack_code == "0"
    error = caught.value
    assert "did NOT settle" in str(error)
    assert error.detail["settled"] is False and error.detail["reversal"] == "reversed"
    assert error.detail["condition"] == "settlement_reversed" and error.detail["omsgid"] == msgid
    assert isinstance(error.__cause__, OutcomeUnknownError)  # the lost call stays attached


async def test_settlement_lost_before_the_centre_acted_needs_nothing_reversed(
    adapter: YibaoAdapter, centre: SimulatorServer
) -> None:
    psn_no, area, mdtrt_id = await open_visit(adapter)
    centre.simulator.inject(Fault("drop_before", infno="2207"))
    with pytest.raises(SettlementReversed) as caught:
        await call(adapter, "2207", settle_input(psn_no, mdtrt_id), insuplc_admdvs=area)
    assert caught.value.detail["reversal"] == "nothing_to_reverse"
    assert not centre.simulator.state.settlements


async def test_a_slow_settlement_past_the_timeout_is_reversed(
    make_adapter: Callable[..., YibaoAdapter], centre: SimulatorServer
) -> None:
    adapter = make_adapter(timeout=0.2)
    psn_no, area, mdtrt_id = await open_visit(adapter)
    centre.simulator.inject(Fault("slow", infno="2207", delay=5.0))
    with pytest.raises(SettlementReversed) as caught:
        await call(adapter, "2207", settle_input(psn_no, mdtrt_id), insuplc_admdvs=area)
    assert caught.value.detail["lost"] == "timeout"
    assert [s.status for s in centre.simulator.state.settlements.values()] == ["reversed"]


async def test_when_the_reversal_fails_too_the_settlement_is_flagged_unresolved(
    adapter: YibaoAdapter, centre: SimulatorServer
) -> None:
    psn_no, area, mdtrt_id = await open_visit(adapter)
    centre.simulator.inject(Fault("drop", infno="2207"))
    centre.simulator.inject(Fault("error", infno="2601", count=3, err_msg="冲正服务暂不可用"))
    wire = Wire()
    request = adapter.transform(Payload.from_json({"infno": "2207", "input": settle_input(psn_no, mdtrt_id),
                                                   "insuplc_admdvs": area}))
    with pytest.raises(SettlementUnresolved) as caught:
        await adapter.send(request, wire)
    assert isinstance(caught.value, OutcomeUnknownError)
    assert caught.value.detail["condition"] == "settlement_unresolved"
    assert "冲正服务暂不可用" in caught.value.detail["problem"]
    assert steps(wire) == ["call", "reversal"]  # the centre refused: no blind repetition


async def test_a_reversal_lost_on_the_network_is_tried_again(adapter: YibaoAdapter, centre: SimulatorServer) -> None:
    psn_no, area, mdtrt_id = await open_visit(adapter)
    centre.simulator.inject(Fault("drop", infno="2207"))
    centre.simulator.inject(Fault("drop_before", infno="2601"))
    wire = Wire()
    request = adapter.transform(Payload.from_json({"infno": "2207", "input": settle_input(psn_no, mdtrt_id),
                                                   "insuplc_admdvs": area}))
    with pytest.raises(SettlementReversed):
        await adapter.send(request, wire)
    assert steps(wire) == ["call", "reversal", "reversal"]
    assert [r.detail["attempt"] for r in wire.records[1:]] == [1, 2]


async def test_a_reversal_refused_for_sign_in_signs_in_again(adapter: YibaoAdapter, centre: SimulatorServer) -> None:
    psn_no, area, mdtrt_id = await open_visit(adapter)
    centre.simulator.inject(Fault("drop", infno="2207"))
    centre.simulator.inject(Fault("sign_in_invalid", infno="2601"))
    wire = Wire()
    request = adapter.transform(Payload.from_json({"infno": "2207", "input": settle_input(psn_no, mdtrt_id),
                                                   "insuplc_admdvs": area}))
    with pytest.raises(SettlementReversed) as caught:
        await adapter.send(request, wire)
    assert caught.value.detail["reversal"] == "reversed"
    assert steps(wire) == ["call", "reversal", "sign_in", "reversal"]
    assert [s.status for s in centre.simulator.state.settlements.values()] == ["reversed"]


async def test_a_gateway_5xx_on_a_settlement_is_treated_as_unknown_and_reversed(
    adapter: YibaoAdapter, centre: SimulatorServer
) -> None:
    psn_no, area, mdtrt_id = await open_visit(adapter)
    centre.simulator.inject(Fault("http_status", infno="2207", status=502))
    with pytest.raises(SettlementReversed) as caught:
        await call(adapter, "2207", settle_input(psn_no, mdtrt_id), insuplc_admdvs=area)
    assert caught.value.detail["reversal"] == "nothing_to_reverse"
    assert not centre.simulator.state.settlements


async def test_a_lost_query_is_not_reversed(adapter: YibaoAdapter, centre: SimulatorServer) -> None:
    await call(adapter, "1101", PERSON_QUERY)
    centre.simulator.inject(Fault("drop", infno="1101"))
    with pytest.raises(OutcomeUnknownError) as caught:
        await call(adapter, "1101", PERSON_QUERY)
    assert not isinstance(caught.value, SettlementUnresolved)
    assert caught.value.detail["centre"] == "yibao" and caught.value.detail["infno"] == "1101"
    assert "2601" not in centre.simulator.state.calls


async def test_infcode_minus_one_is_a_permanent_error_with_the_fields(
    adapter: YibaoAdapter, centre: SimulatorServer
) -> None:
    centre.simulator.inject(Fault("error", infno="1101", err_msg="人员信息不存在"))
    with pytest.raises(CentreRejected) as caught:
        await call(adapter, "1101", PERSON_QUERY)
    detail = caught.value.detail
    assert isinstance(caught.value, PermanentError)
    assert detail["infcode"] == -1 and detail["err_msg"] == "人员信息不存在"
    assert len(str(detail["trace_id"])) == 32 and detail["centre"] == "yibao" and detail["infno"] == "1101"


async def test_bad_input_is_refused_before_anything_is_sent(adapter: YibaoAdapter, centre: SimulatorServer) -> None:
    with pytest.raises(InputError) as caught:
        adapter.transform(Payload.from_json({"infno": "2207", "input": {"data": {"mdtrt_id": "1"}},
                                             "insuplc_admdvs": "440300"}))
    assert "input.data.psn_no" in str(caught.value.field)
    with pytest.raises(InputError) as missing_area:
        adapter.transform(Payload.from_json({"infno": "2207", "input": settle_input("SIM1", "300000001")}))
    assert missing_area.value.field == "insuplc_admdvs"
    for body, field in [(b"not json", "body"), (b'{"input": {}}', "infno"), (b'{"infno": "1101"}', "input")]:
        with pytest.raises(InputError) as bad:
            adapter.transform(Payload(body))
        assert bad.value.field == field
    assert centre.simulator.state.calls == []


async def test_his_cannot_sign_in_or_out_itself(adapter: YibaoAdapter) -> None:
    for infno in ("9001", "9002"):
        with pytest.raises(InputError) as caught:
            adapter.transform(Payload.from_json({"infno": infno, "input": {}}))
        assert caught.value.field == "infno"


async def test_a_lost_sign_in_means_the_settlement_was_not_sent(
    adapter: YibaoAdapter, centre: SimulatorServer
) -> None:
    centre.simulator.inject(Fault("drop", infno="9001"))
    request = adapter.transform(Payload.from_json({"infno": "2207", "input": settle_input("SIM1", "300000001"),
                                                   "insuplc_admdvs": "440300"}))
    with pytest.raises(TransientError) as caught:
        await adapter.send(request, Wire())
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert caught.value.detail["step"] == "sign_in"
    assert centre.simulator.state.calls == ["9001"]  # the centre signed in; no settlement was sent


async def test_a_string_infcode_is_understood(adapter: YibaoAdapter, centre: SimulatorServer) -> None:
    await call(adapter, "1101", PERSON_QUERY)
    centre.simulator.inject(Fault("string_infcode", infno="1101"))
    reply, wire = await call(adapter, "1101", PERSON_QUERY)
    assert reply["infcode"] == 0 and '"infcode": "0"' in wire.records[-1].response.text()


async def test_a_non_envelope_answer_keeps_the_raw_bytes(adapter: YibaoAdapter, centre: SimulatorServer) -> None:
    await call(adapter, "1101", PERSON_QUERY)
    centre.simulator.inject(Fault("malformed", infno="1101"))
    with pytest.raises(PermanentError) as caught:
        await call(adapter, "1101", PERSON_QUERY)
    assert caught.value.detail["condition"] == "bad_envelope" and "502 Bad Gateway" in caught.value.detail["raw"]


async def test_a_wrong_tif_token_is_refused_by_the_gateway(
    make_adapter: Callable[..., YibaoAdapter], monkeypatch: pytest.MonkeyPatch, centre: SimulatorServer
) -> None:
    monkeypatch.setenv("YIBAO_TEST_WRONG_TOKEN", "not-the-token")
    adapter = make_adapter(signing={"scheme": "tif", "paasid": "sim_paas", "token": {"$env": "YIBAO_TEST_WRONG_TOKEN"}})
    with pytest.raises(PermanentError) as caught:
        await call(adapter, "1101", PERSON_QUERY)
    assert caught.value.detail["condition"] == "gateway_rejected"
    assert caught.value.detail["err_msg"] == "签名不一致!" and caught.value.detail["http_status"] == 401


async def test_shutdown_signs_out_once(make_adapter: Callable[..., YibaoAdapter], centre: SimulatorServer) -> None:
    adapter = make_adapter()
    await call(adapter, "1101", PERSON_QUERY)
    await adapter.aclose()
    await adapter.aclose()
    assert centre.simulator.state.calls.count("9002") == 1
    assert not centre.simulator.state.sign_ins


def test_keys_are_indexed_but_never_an_id_number(adapter: YibaoAdapter) -> None:
    request = Payload.from_json({"infno": "2207", "input": {"data": {"psn_no": "SIM1", "mdtrt_id": "300000001",
                                                                      "certno": FAKE_CERT_NO, "chrg_bchno": "CB1"}}})
    assert adapter.extract_keys(request) == {"infno": "2207", "psn_no": "SIM1", "mdtrt_id": "300000001",
                                             "chrg_bchno": "CB1"}
