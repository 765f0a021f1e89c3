"""The request envelope's fields and the response envelope's parsing."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from engine.errors import InputError, PermanentError
from plugins.yibao.api import CentreRejected, is_sign_in_invalid
from plugins.yibao.envelope import ENVELOPE_FIELDS, Deployment, Operator, build_envelope
from plugins.yibao.response import parse_answer, parse_infcode, rejection, split_trace

DEPLOYMENT = Deployment("H44030400123", "模拟人民医院", "440300", recer_sys_code="MBS_LOCAL")
OPERATOR = Operator("0153", "测试收费员")


def test_envelope_has_every_spec_field_in_order() -> None:
    envelope = build_envelope(
        DEPLOYMENT, OPERATOR, infno="2207", msgid="H44030400123202406010930150001",
        input={"data": {"psn_no": "SIM00000000000000001"}}, sign_no="S1", insuplc_admdvs="440304",
        now=datetime(2024, 6, 1, 9, 30, 15),
    )
    assert tuple(envelope) == ENVELOPE_FIELDS
    assert "mdtrtarea_admvs" in envelope and "mdtrt_area_admvs" not in envelope
    assert envelope == {
        "infno": "2207", "msgid": "H44030400123202406010930150001", "mdtrtarea_admvs": "440300",
        "insuplc_admdvs": "440304", "recer_sys_code": "MBS_LOCAL", "dev_no": "", "dev_safe_info": "",
        "cainfo": "", "signtype": "", "infver": "V1.0", "opter_type": "1", "opter": "0153",
        "opter_name": "测试收费员", "inf_time": "2024-06-01 09:30:15", "fixmedins_code": "H44030400123",
        "fixmedins_name": "模拟人民医院", "sign_no": "S1", "input": {"data": {"psn_no": "SIM00000000000000001"}},
    }


def test_insuplc_admdvs_is_required_when_the_input_has_a_psn_no() -> None:
    with pytest.raises(InputError) as caught:
        build_envelope(DEPLOYMENT, OPERATOR, infno="2207", msgid="m" * 30,
                       input={"feedetail": [{"psn_no": "SIM1"}]})
    assert caught.value.field == "insuplc_admdvs" and caught.value.party == "his"


def test_without_psn_no_the_area_of_care_is_sent() -> None:
    envelope = build_envelope(DEPLOYMENT, OPERATOR, infno="9001", msgid="m" * 30,
                              input={"signIn": {"opter_no": "0153", "mac": "", "ip": ""}})
    assert envelope["insuplc_admdvs"] == "440300" and envelope["sign_no"] == ""


@pytest.mark.parametrize(("value", "expected"), [(0, 0), ("0", 0), (-1, -1), ("-1", -1), (0.0, 0), (" -1 ", -1)])
def test_infcode_parses_as_number_or_string(value: object, expected: int) -> None:
    assert parse_infcode(value) == expected


@pytest.mark.parametrize("value", [True, "x", None, 1.5])
def test_infcode_that_is_not_a_number_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        parse_infcode(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("就诊凭证编号不能为空(8f6b6ff99132423898ac53f143718e23@10.70.130.148)",
         ("就诊凭证编号不能为空", "8f6b6ff99132423898ac53f143718e23", "10.70.130.148")),
        ("人员信息不存在（abc123@10.0.0.1）", ("人员信息不存在", "abc123", "10.0.0.1")),
        ("success", ("success", None, None)),
        ("说明(见附件)", ("说明(见附件)", None, None)),
        (None, ("", None, None)),
    ],
)
def test_trace_suffix_is_split_out(text: str | None, expected: tuple[str, str | None, str | None]) -> None:
    assert split_trace(text) == expected


def test_failure_envelope_becomes_an_error_with_the_fields_rules_match() -> None:
    body = json.dumps({
        "infcode": "-1", "inf_refmsgid": "", "refmsg_time": "20240601093102351",
        "respond_time": "20240601093102356",
        "err_msg": "就诊凭证编号不能为空(5c1d0e9a7b3f4e21a9d8c6b5a4f3e2d1@10.70.130.148)",
        "warn_msg": None, "cainfo": None, "signtype": None, "output": None,
    }, ensure_ascii=False).encode()
    answer = parse_answer(body)
    assert not answer.ok and answer.infcode == -1 and answer.inf_refmsgid is None
    error = rejection(answer, "2207")
    assert isinstance(error, PermanentError)
    assert error.detail == {"infcode": -1, "err_msg": "就诊凭证编号不能为空",
                            "trace_id": "5c1d0e9a7b3f4e21a9d8c6b5a4f3e2d1", "node_ip": "10.70.130.148",
                            "infno": "2207"}


def test_success_envelope_keeps_output_and_ids() -> None:
    answer = parse_answer(json.dumps({"infcode": 0, "inf_refmsgid": "440300202406010800000000012345",
                                      "err_msg": "success", "output": {"signinoutb": {"sign_no": "1"}}}).encode())
    assert answer.ok and answer.output == {"signinoutb": {"sign_no": "1"}}
    assert answer.inf_refmsgid == "440300202406010800000000012345" and answer.trace_id is None


@pytest.mark.parametrize("body", [b"<html>502</html>", b"[1, 2]", b'{"output": {}}', b'{"infcode": "ok"}'])
def test_an_answer_that_is_no_envelope_keeps_its_raw_bytes(body: bytes) -> None:
    with pytest.raises(PermanentError) as caught:
        parse_answer(body, http_status=200)
    assert caught.value.detail["condition"] == "bad_envelope"
    assert caught.value.detail["raw"] == body.decode()


def test_a_gateway_error_is_told_apart() -> None:
    with pytest.raises(PermanentError) as caught:
        parse_answer('{"code": 401, "message": "签名不一致!"}'.encode(), http_status=401)
    assert caught.value.detail["condition"] == "gateway_rejected"
    assert caught.value.detail["err_msg"] == "签名不一致!"


def test_is_sign_in_invalid_recognises_the_centres_texts_whatever_shape_they_come_in() -> None:
    text = "签到信息已失效，请重新签到(4a1f-77@10.1.2.3)"
    refused = CentreRejected("centre rejected 2207", detail={"infcode": -1, "err_msg": "签到信息已失效"})
    assert is_sign_in_invalid(text)
    assert is_sign_in_invalid(refused)
    assert is_sign_in_invalid(parse_answer(json.dumps({"infcode": -1, "err_msg": text}).encode()))
    assert not is_sign_in_invalid("就诊凭证编号不能为空")
    assert not is_sign_in_invalid(parse_answer(b'{"infcode": 0, "output": {}}'))
    assert not is_sign_in_invalid(CentreRejected("no detail"))
    assert not is_sign_in_invalid(None)
