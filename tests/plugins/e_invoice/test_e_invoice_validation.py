"""Validation before sending: HIS's mistakes are named by field and nothing leaves."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.errors import InputError
from engine.message import Payload
from plugins.e_invoice.adapter import his_call
from plugins.e_invoice.methods import method_named
from plugins.e_invoice.validation import validated
from tests.plugins.e_invoice.invoices import outpatient


def check(call: dict[str, Any] | bytes) -> dict[str, Any]:
    body = call if isinstance(call, bytes) else json.dumps(call, ensure_ascii=False).encode()
    parsed = his_call(Payload(body))
    return validated(method_named(parsed.get("method")), parsed.get("data"))


def field_of(call: dict[str, Any] | bytes) -> str | None:
    with pytest.raises(InputError) as caught:
        check(call)
    assert caught.value.party == "his"
    return caught.value.field


def test_a_good_outpatient_invoice_passes_with_amounts_as_strings() -> None:
    business = check(outpatient())
    assert business["totalAmt"] == "125.50"
    assert business["payChannelDetail"][1]["payChannelValue"] == "25.50"


def test_numbers_with_a_point_are_read_exactly_never_as_floats() -> None:
    body = outpatient()
    raw = json.dumps(body, ensure_ascii=False).replace('"125.50"', "125.50").replace('"25.50"', "25.50")
    business = check(raw.encode())
    assert business["totalAmt"] == "125.50"


def test_pay_channels_must_sum_to_the_total() -> None:
    call = outpatient()
    call["data"]["payChannelDetail"][1]["payChannelValue"] = "25.49"
    assert field_of(call) == "data.payChannelDetail"


def test_charge_lines_must_sum_to_the_total() -> None:
    call = outpatient()
    call["data"]["chargeDetail"][0]["amt"] = "120.00"
    assert field_of(call) == "data.chargeDetail"


def test_list_lines_must_sum_to_their_charge_line() -> None:
    call = outpatient()
    call["data"]["listDetail"][0]["amt"] = "125.49"
    assert field_of(call) == "data.listDetail"


def test_a_list_line_must_belong_to_a_charge_line() -> None:
    call = outpatient()
    call["data"]["listDetail"][0]["chargeCode"] = "YLMZ99"
    assert field_of(call) == "data.listDetail[0].chargeCode"


@pytest.mark.parametrize("name", ["payer", "busNo", "placeCode", "totalAmt", "busDateTime"])
def test_required_fields_are_named(name: str) -> None:
    call = outpatient()
    del call["data"][name]
    assert field_of(call) == f"data.{name}"


@pytest.mark.parametrize(("name", "value", "field"), [
    ("totalAmt", "12.345", "data.totalAmt"),
    ("totalAmt", "abc", "data.totalAmt"),
    ("payerType", "3", "data.payerType"),
    ("tel", "1390000", "data.tel"),
    ("busDateTime", "2026-11-22", "data.busDateTime"),
])
def test_malformed_values_are_named(name: str, value: str, field: str) -> None:
    assert field_of(outpatient(**{name: value})) == field


def test_an_unknown_method_is_named() -> None:
    assert field_of({"method": "invoiceEverything", "data": {}}) == "method"


def test_a_body_that_is_not_json_is_named() -> None:
    assert field_of(b"busNo=1") == "body"


def test_registration_defaults_its_bus_type() -> None:
    call = outpatient()
    call["method"] = "registration"
    del call["data"]["busType"]
    assert check(call)["busType"] == "06"


def test_a_write_off_needs_the_bill_it_flushes() -> None:
    assert field_of({"method": "write_off", "data": {"billNo": "1", "reason": "退费", "operator": "测试",
                                                      "busDateTime": "20261122100000000", "placeCode": "KPD001"}}
                    ) == "data.billBatchCode"
