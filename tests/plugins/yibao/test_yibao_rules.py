"""The 故障责任清单: sample yibao failures map to the right party, ahead of the engine's rules."""

from __future__ import annotations

import pytest

from engine.attribution.facts import facts_from_error
from engine.attribution.loader import load_core_rules
from engine.attribution.rules import FaultRule, decide
from engine.errors import DestinationUnavailable, OutcomeUnknownError, PermanentError
from engine.message import Party, Verdict
from plugins.yibao.plugin import fault_rules
from plugins.yibao.response import parse_answer, rejection
from plugins.yibao.settlement import SettlementReversed, SettlementUnresolved


@pytest.fixture(scope="module")
def rules() -> list[FaultRule]:
    return fault_rules() + load_core_rules()


def centre_error(err_msg: str, infcode: int = -1, infno: str = "2207") -> PermanentError:
    body = f'{{"infcode": {infcode}, "err_msg": "{err_msg}(0123abcd@10.70.130.148)", "output": null}}'
    error = rejection(parse_answer(body.encode()), infno)
    error.detail.update({"centre": "yibao", "msgid": "H44030400123202611010930150001"})
    return error


def verdict(rules: list[FaultRule], error: Exception) -> Verdict:
    return decide(rules, facts_from_error(error, stage="send", adapter="yibao", channel="yibao", wire=None))


def test_every_rule_is_a_plugin_rule(rules: list[FaultRule]) -> None:
    own = fault_rules()
    assert own and all(rule.priority < 1000 and rule.id.startswith("yibao.") for rule in own)
    assert all(rule.remedy for rule in own)


@pytest.mark.parametrize(
    ("err_msg", "party", "rule_id"),
    [
        ("就诊凭证编号不能为空", Party.HIS, "yibao.his.no_credential_number"),
        ("人员信息不存在", Party.HIS, "yibao.his.person_unknown"),
        ("报文ID重复：H44030400123202611010930150001", Party.ENGINE, "yibao.engine.duplicate_msgid"),
        ("费用明细流水号重复：F001", Party.HIS, "yibao.his.duplicate"),
        ("该结算已撤销，不能重复撤销", Party.HIS, "yibao.his.already_cancelled"),
        ("参数错误：缺少节点data", Party.HIS, "yibao.his.field_rule"),
        ("个人账户余额不足", Party.THIRD_PARTY, "yibao.third_party.account_balance"),
        ("签到信息已失效，请重新签到", Party.THIRD_PARTY, "yibao.sign_in.invalid"),
        ("系统异常，请稍后再试", Party.THIRD_PARTY, "yibao.centre.system_error"),
    ],
)
def test_centre_texts_map_to_parties(rules: list[FaultRule], err_msg: str, party: Party, rule_id: str) -> None:
    found = verdict(rules, centre_error(err_msg))
    assert (found.party, found.rule_id) == (party, rule_id)
    assert "@10.70.130.148" not in found.reason  # the trace suffix is split off the text


def test_the_reason_quotes_the_trace_id_and_names_the_call(rules: list[FaultRule]) -> None:
    found = verdict(rules, centre_error("就诊凭证编号不能为空"))
    assert found.reason == (
        "HIS sent no credential number (mdtrt_cert_no) for 2207: 就诊凭证编号不能为空 (trace 0123abcd)"
    )
    assert "mdtrt_cert_no" in found.remedy


def test_other_infcodes_are_the_centres_too(rules: list[FaultRule]) -> None:
    assert verdict(rules, centre_error("业务处理失败", infcode=-2)).rule_id == "yibao.centre.rejected"


def test_settlement_outcomes_have_their_own_verdicts(rules: list[FaultRule]) -> None:
    facts = {"centre": "yibao", "infno": "2207", "oinfno": "2207", "omsgid": "H44030400123202611010930150001",
             "lost": "reset"}
    reversed_ = SettlementReversed("x", detail={**facts, "condition": "settlement_reversed"})
    unresolved = SettlementUnresolved("x", detail={**facts, "condition": "settlement_unresolved"})
    found = verdict(rules, reversed_)
    assert (found.party, found.rule_id) == (Party.NETWORK, "yibao.settlement.reversed")
    found = verdict(rules, unresolved)
    assert found.rule_id == "yibao.settlement.unresolved"
    assert "MANUAL FOLLOW-UP" in found.remedy and "H44030400123202611010930150001" in found.reason


def test_gateway_signature_refusal_is_our_configuration(rules: list[FaultRule]) -> None:
    error = PermanentError("g", detail={"centre": "yibao", "condition": "gateway_rejected", "err_msg": "签名不一致!",
                                        "http_status": 401})
    assert verdict(rules, error).party == Party.ENGINE


def test_an_answer_that_is_no_envelope_is_the_centres(rules: list[FaultRule]) -> None:
    error = PermanentError(
        "bad", detail={"centre": "yibao", "infno": "1101", "condition": "bad_envelope", "raw": "<html>"}
    )
    found = verdict(rules, error)
    assert (found.party, found.rule_id) == (Party.THIRD_PARTY, "yibao.centre.bad_envelope")


def test_the_same_text_from_another_system_is_left_to_its_own_rules(rules: list[FaultRule]) -> None:
    error = PermanentError("x", detail={"err_msg": "就诊凭证编号不能为空", "infcode": -1})
    assert not verdict(rules, error).rule_id.startswith("yibao.")


def test_transport_failures_stay_with_the_engine_rules(rules: list[FaultRule]) -> None:
    error = OutcomeUnknownError("timeout", detail={"condition": "timeout", "request_left": True, "centre": "yibao"})
    assert not verdict(rules, error).rule_id.startswith("yibao.")


@pytest.mark.parametrize(
    ("state", "reason", "party", "rule_id"),
    [
        ("suspended", "centre maintenance 22:00-23:00", Party.THIRD_PARTY, "yibao.unavailable.suspended"),
        ("open", "TransientError: connect: ConnectError: refused", Party.NETWORK, "yibao.unavailable.unreachable"),
        ("open", "TransientError: http_status: HTTP 503", Party.THIRD_PARTY, "yibao.unavailable.failing"),
    ],
)
def test_a_centre_not_called_tells_the_cashier_to_take_self_pay(
    rules: list[FaultRule], state: str, reason: str, party: Party, rule_id: str
) -> None:
    error = DestinationUnavailable("centre", state=state, since=None, reason=reason)
    found = verdict(rules, error)
    assert (found.party, found.rule_id) == (party, rule_id)
    assert "insurance suspended" in found.reason and "self-pay" in found.reason


def test_another_adapters_open_breaker_keeps_the_engines_rule(rules: list[FaultRule]) -> None:
    error = DestinationUnavailable("upstream", state="open", since=None, reason="TransientError: timeout: 10 s")
    facts = facts_from_error(error, stage="send", adapter="http_json", channel="demo", wire=None)
    assert decide(rules, facts).rule_id == "core.unavailable.breaker_open"
