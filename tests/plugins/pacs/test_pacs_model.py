"""The order and report models: what HIS must send, and the business keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.errors import InputError
from engine.message import Payload
from plugins.pacs.model import ExamReport, OrderAction, order_keys, parse_order
from tests.plugins.pacs.conftest import exam_order


def test_a_cancel_needs_only_the_accession() -> None:
    order = parse_order(Payload.from_json({"action": "cancel", "accession_number": "ACC5001"}))
    assert order.action is OrderAction.CANCEL and order.keys() == {"accession_number": "ACC5001"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"accession_number": "X" * 17}, "accession_number"),
        ({"modality": "ct"}, "modality"),
        ({"action": "renew"}, "action"),
        ({"patient": {"id": "P1"}}, "patient.name"),
        ({"scheduled_at": "tomorrow"}, "scheduled_at"),
    ],
)
def test_bad_fields_are_named(change: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_order(Payload.from_json(exam_order("ACC5002", **change)))
    assert raised.value.field == field and raised.value.party == "his"


def test_not_json_is_his_fault() -> None:
    with pytest.raises(InputError) as raised:
        parse_order(Payload(b"<order/>", "application/xml"))
    assert raised.value.field == "body"


def test_keys_survive_a_broken_order() -> None:
    assert order_keys(Payload.from_json({"accession_number": "ACC5003", "modality": 7})) == {
        "accession_number": "ACC5003"
    }
    assert order_keys(Payload(b"not json")) == {}


def test_a_final_report_must_be_verified() -> None:
    report = {
        "accession_number": "ACC5004",
        "patient": {"id": "P-TEST-1", "name": "测试患者丙"},
        "findings": "颅内未见明显异常密度影。",
        "impression": "头颅CT平扫未见明显异常。",
        "author": {"id": "R01", "name": "测试报告医生"},
        "attachments": [{"ref": "blob:sha256:" + "0" * 64, "content_type": "application/pdf", "size": 1024}],
    }
    with pytest.raises(ValidationError, match="verified_at"):
        ExamReport.model_validate(report)
    verified = ExamReport.model_validate({**report, "verified_at": "2026-11-23T10:05:00"})
    assert (verified.attachments[0].size, verified.attachments[0].sha256) == (1024, "0" * 64)
