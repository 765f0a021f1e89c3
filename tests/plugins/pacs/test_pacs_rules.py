"""The pacs 故障责任清单: PACS failures map to the right party, ahead of the engine's rules."""

from __future__ import annotations

import pytest
from zeep.exceptions import Fault

from engine.attribution.facts import facts_from_error
from engine.attribution.loader import load_core_rules
from engine.attribution.rules import FaultRule, decide
from engine.errors import AdapterError, InputError, PermanentError
from engine.message import Party, Verdict
from engine.transports import translate_zeep
from plugins.pacs.plugin import fault_rules
from plugins.pacs.report_intake import UnknownAccession


@pytest.fixture(scope="module")
def rules() -> list[FaultRule]:
    return fault_rules() + load_core_rules()


def verdict(rules: list[FaultRule], error: Exception, adapter: str = "pacs_soap") -> Verdict:
    return decide(rules, facts_from_error(error, stage="send", adapter=adapter, channel="exam_orders", wire=None))


def test_every_rule_is_a_plugin_rule() -> None:
    own = fault_rules()
    assert own and all(rule.priority < 1000 and rule.id.startswith("pacs.") and rule.remedy for rule in own)


@pytest.mark.parametrize(
    ("error", "party", "rule_id"),
    [
        (translate_zeep(Fault("数据库连接失败", code="soap:Server")), Party.THIRD_PARTY, "pacs.third_party.soap_fault"),
        (
            translate_zeep(Fault("accession number A1 not found (检查号不存在)", code="soap:Client")),
            Party.HIS,
            "pacs.his.unknown_accession_fault",
        ),
        (
            PermanentError(
                "pacs_rejected: PlaceExamOrder result 2: 检查号已存在",
                detail={
                    "condition": "pacs_rejected",
                    "result_code": 2,
                    "operation": "PlaceExamOrder",
                    "result_message": "检查号已存在",
                },
            ),
            Party.HIS,
            "pacs.his.duplicate_accession",
        ),
        (
            PermanentError(
                "pacs_rejected: PlaceExamOrder result 9: 设备停用",
                detail={
                    "condition": "pacs_rejected",
                    "result_code": 9,
                    "operation": "PlaceExamOrder",
                    "result_message": "设备停用",
                },
            ),
            Party.THIRD_PARTY,
            "pacs.third_party.rejected",
        ),
        (
            PermanentError("malformed_xml: x", detail={"condition": "malformed_xml"}),
            Party.THIRD_PARTY,
            "pacs.third_party.malformed_xml",
        ),
        (PermanentError("wsdl: x", detail={"condition": "wsdl"}), Party.ENGINE, "pacs.engine.wsdl"),
    ],
)
def test_soap_failures(rules: list[FaultRule], error: AdapterError, party: Party, rule_id: str) -> None:
    found = verdict(rules, error)
    assert (found.party, found.rule_id) == (party, rule_id)


def test_the_fault_reason_quotes_the_faultstring(rules: list[FaultRule]) -> None:
    found = verdict(rules, translate_zeep(Fault("数据库连接失败", code="soap:Server")))
    assert found.reason == "the PACS answered a SOAP fault (Server): 数据库连接失败"


def test_rest_unknown_accession_is_his(rules: list[FaultRule]) -> None:
    error = PermanentError(
        "unknown_accession", detail={"condition": "unknown_accession", "accession_number": "A9", "http_status": 404}
    )
    found = verdict(rules, error, adapter="pacs_rest")
    assert (found.party, found.rule_id) == (Party.HIS, "pacs.his.unknown_accession")
    assert "A9" in found.reason


def test_other_adapters_are_not_judged_by_pacs_rules(rules: list[FaultRule]) -> None:
    found = verdict(rules, translate_zeep(Fault("x", code="Server")), adapter="some_soap")
    assert not found.rule_id.startswith("pacs.")


@pytest.mark.parametrize(
    ("error", "rule_id"),
    [
        (UnknownAccession("no exam order with accession number A9", field="accession_number", party="third_party"),
         "pacs.third_party.report_unknown_accession"),
        (InputError("broken base64: Incorrect padding", field="OBX[5]-5", party="third_party"),
         "pacs.third_party.report_invalid"),
    ],
)
def test_a_refused_report_is_the_pacs(rules: list[FaultRule], error: InputError, rule_id: str) -> None:
    found = decide(rules, facts_from_error(error, stage="validate", adapter="", channel="pacs_reports", wire=None))
    assert (found.party, found.rule_id) == (Party.THIRD_PARTY, rule_id)
    assert str(error) in found.reason
