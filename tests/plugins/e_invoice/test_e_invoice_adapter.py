"""The adapter against the simulated platform over real sockets: issue, red-flush, status,
picture, vouchers, and the lost answer resolved without a second invoice."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.adapters.base import Wire
from engine.attribution.facts import facts_from_error
from engine.attribution.loader import load_core_rules
from engine.attribution.rules import decide
from engine.errors import AdapterError, OutcomeUnknownError, PermanentError, TransientError
from engine.message import Payload
from plugins.e_invoice.adapter import EInvoiceAdapter
from plugins.e_invoice.plugin import fault_rules
from plugins.e_invoice.simulator import Fault, PlatformServer
from tests.plugins.e_invoice.invoices import outpatient

ISSUE = "invoiceEBillOutpatient"


async def run(adapter: EInvoiceAdapter, call: dict[str, Any], wire: Wire | None = None) -> dict[str, Any]:
    reply = await adapter.send(adapter.transform(Payload.from_json(call)), wire or Wire())
    answer: dict[str, Any] = adapter.transform_response(reply).json()
    return answer


async def failure(adapter: EInvoiceAdapter, call: dict[str, Any], wire: Wire) -> AdapterError:
    with pytest.raises(AdapterError) as caught:
        await run(adapter, call, wire)
    return caught.value


def steps(wire: Wire) -> list[tuple[str, bool, bool]]:
    return [(str(r.detail.get("step")), r.sent is not None, r.response is not None) for r in wire.records]


def verdict_of(error: AdapterError, wire: Wire) -> tuple[str, str]:
    facts = facts_from_error(error, stage="send", adapter="e_invoice", channel="einvoice", wire=wire)
    verdict = decide(fault_rules() + load_core_rules(), facts)
    return verdict.party.value, verdict.rule_id


async def test_an_outpatient_invoice_is_issued(adapter: EInvoiceAdapter, platform: PlatformServer) -> None:
    reply = await run(adapter, outpatient())
    assert reply["resolved_by"] == "issued" and reply["busNo"] == "MZ202611220001"
    assert reply["billNo"] and reply["random"] and reply["pictureUrl"].startswith("http")
    assert platform.simulator.state.issued_count == 1


async def test_business_keys_come_from_the_request(adapter: EInvoiceAdapter) -> None:
    assert adapter.extract_keys(Payload.from_json(outpatient("MZ9"))) == {"bus_no": "MZ9"}
    flush = {"method": "write_off", "data": {"billBatchCode": "44010124", "billNo": "0000000001"}}
    assert adapter.extract_keys(Payload.from_json(flush)) == {"invoice_no": "440101240000000001"}


async def test_a_lost_answer_is_resolved_by_lookup_without_a_second_invoice(
    adapter: EInvoiceAdapter, platform: PlatformServer
) -> None:
    platform.simulator.inject(Fault("drop", method=ISSUE))
    wire = Wire()
    reply = await run(adapter, outpatient(), wire)
    assert reply["resolved_by"] == "lookup" and reply["billNo"] == "0000000001"
    assert platform.simulator.state.issued_count == 1
    assert platform.simulator.state.calls.count(ISSUE) == 1
    assert steps(wire) == [("issue", True, False), ("lookup", True, True)]


async def test_a_request_lost_before_the_platform_is_issued_once_after_lookup(
    adapter: EInvoiceAdapter, platform: PlatformServer
) -> None:
    platform.simulator.inject(Fault("drop_before", method=ISSUE))
    wire = Wire()
    reply = await run(adapter, outpatient(), wire)
    assert reply["resolved_by"] == "issued" and platform.simulator.state.issued_count == 1
    assert steps(wire) == [("issue", True, False), ("lookup", True, True), ("issue_again", True, True)]


async def test_when_the_lookup_fails_too_the_next_attempt_looks_up_before_posting(
    adapter: EInvoiceAdapter, platform: PlatformServer
) -> None:
    platform.simulator.inject(Fault("drop", method=ISSUE))
    platform.simulator.inject(Fault("drop", method="getBillByBusDate"))
    first = Wire()
    error = await failure(adapter, outpatient(), first)
    assert isinstance(error, OutcomeUnknownError)
    second = Wire()
    reply = await run(adapter, outpatient(), second)
    assert reply["resolved_by"] == "lookup" and platform.simulator.state.issued_count == 1
    assert steps(second) == [("lookup", True, True)]
    assert platform.simulator.state.calls.count(ISSUE) == 1


async def test_a_duplicate_bus_no_answer_returns_the_existing_invoice(
    make_adapter: Any, platform: PlatformServer
) -> None:
    first = await run(make_adapter(), outpatient())
    again = await run(make_adapter(), outpatient())  # a fresh adapter: no memory of the first
    assert again["resolved_by"] == "duplicate" and again["billNo"] == first["billNo"]
    assert platform.simulator.state.issued_count == 1


async def test_a_bad_answer_signature_is_the_platforms_fault(
    adapter: EInvoiceAdapter, platform: PlatformServer
) -> None:
    platform.simulator.inject(Fault("bad_signature", method=ISSUE))
    wire = Wire()
    error = await failure(adapter, outpatient(), wire)
    assert isinstance(error, PermanentError) and error.detail["condition"] == "bad_signature"
    assert verdict_of(error, wire) == ("third_party", "e_invoice.third_party.bad_signature")


async def test_a_busy_platform_is_transient_and_blamed_on_it(
    adapter: EInvoiceAdapter, platform: PlatformServer
) -> None:
    platform.simulator.inject(Fault("error", method=ISSUE, result="E9999", text="系统繁忙，请稍后再试"))
    wire = Wire()
    error = await failure(adapter, outpatient(), wire)
    assert isinstance(error, TransientError)
    assert verdict_of(error, wire) == ("third_party", "e_invoice.third_party.busy")
    assert platform.simulator.state.issued_count == 0


async def test_an_amount_the_platform_refuses_is_his_fault(adapter: EInvoiceAdapter, platform: PlatformServer) -> None:
    platform.simulator.inject(Fault("error", method=ISSUE, result="E2001", text="缴费渠道金额合计与票据总金额不一致"))
    wire = Wire()
    error = await failure(adapter, outpatient(), wire)
    assert verdict_of(error, wire) == ("his", "e_invoice.his.amount_mismatch")
    assert "E2001" in str(error) and "不一致" in str(error)


async def test_red_flush_then_status(adapter: EInvoiceAdapter, platform: PlatformServer) -> None:
    issued = await run(adapter, outpatient())
    bill = {"billBatchCode": issued["billBatchCode"], "billNo": issued["billNo"]}
    flushed = await run(adapter, {"method": "write_off", "data": {
        **bill, "reason": "退费", "operator": "测试收费员", "busDateTime": "20261122110000000", "placeCode": "KPD001"}})
    assert flushed["resolved_by"] == "written_off" and flushed["eScarletBillNo"]
    status = await run(adapter, {"method": "status", "data": bill})
    assert (status["state"], status["isScarlet"]) == (1, 1)


async def test_a_red_flush_whose_answer_was_lost_is_confirmed_by_status(
    adapter: EInvoiceAdapter, platform: PlatformServer
) -> None:
    issued = await run(adapter, outpatient())
    platform.simulator.inject(Fault("drop", method="writeOffEBill"))
    wire = Wire()
    reply = await run(adapter, {"method": "write_off", "data": {
        "billBatchCode": issued["billBatchCode"], "billNo": issued["billNo"], "reason": "退费",
        "operator": "测试收费员", "busDateTime": "20261122110000000", "placeCode": "KPD001"}}, wire)
    assert reply["resolved_by"] == "status" and reply["isScarlet"] == 1
    assert steps(wire) == [("write_off", True, False), ("status", True, True)]
    assert platform.simulator.state.calls.count("writeOffEBill") == 1


async def test_the_picture_method_finds_the_bill_of_a_bus_no(adapter: EInvoiceAdapter) -> None:
    """No picture query exists (spec §2.2 [NF]) and the business-date list carries no picture
    links: `picture` finds the bill by busNo and says what the list holds, nothing invented."""
    issued = await run(adapter, outpatient())
    wire = Wire()
    picture = await run(adapter, {"method": "picture", "data": {"busNo": "MZ202611220001",
                                                                "busDateTime": "20261122094000123",
                                                                "placeCode": "KPD001"}}, wire)
    assert (picture["billNo"], picture["random"]) == (issued["billNo"], issued["random"])
    assert "pictureUrl" not in picture
    assert wire.records[0].detail["why"] == "picture"


async def test_the_payment_voucher_pair(adapter: EInvoiceAdapter, platform: PlatformServer) -> None:
    voucher = {"busNo": "YJ202611220001", "busDateTime": "20261122080000000", "placeCode": "KPD001",
               "payee": "测试收费员", "payer": "测试患者乙", "totalAmt": "1000.00",
               "payChannelDetail": [{"payChannelCode": "05", "payChannelValue": "1000.00"}]}
    issued = await run(adapter, {"method": "pay_voucher", "data": voucher})
    refund = await run(adapter, {"method": "pay_voucher_refund", "data": {
        "busNo": "YJ202611220001-R", "busDateTime": "20261123080000000", "placeCode": "KPD001",
        "payee": "测试收费员", "totalAmt": "1000.00", "payer": "测试患者乙"}})
    assert issued["billNo"] != refund["billNo"]
    assert [b.method for b in platform.simulator.state.bills.values()] == [
        "invoicePayMentVoucher", "writeOffPayMentVoucher"]


async def test_the_lookup_pages_through_the_business_day(
    make_adapter: Any, platform: PlatformServer
) -> None:
    adapter = make_adapter(lookup_page_size=1)
    for number in range(3):
        await run(adapter, outpatient(f"MZ-PAGE-{number}"))
    wire = Wire()
    picture = await run(adapter, {"method": "picture", "data": {"busNo": "MZ-PAGE-2",
                                                                "busDateTime": "20261122094000123"}}, wire)
    assert picture["billNo"] == platform.simulator.state.bills["MZ-PAGE-2"].bill_no
    assert [r.detail["page"] for r in wire.records] == [1, 2, 3]


async def test_the_picture_of_a_bill_never_issued_is_his_fault(adapter: EInvoiceAdapter) -> None:
    wire = Wire()
    error = await failure(adapter, {"method": "picture", "data": {"busNo": "MZ-NEVER",
                                                                  "busDateTime": "20261122094000123"}}, wire)
    assert verdict_of(error, wire) == ("his", "e_invoice.his.no_bill_for_bus_no")


async def test_a_platform_answering_duplicates_with_the_same_bill_issues_once(
    make_adapter: Any, platform: PlatformServer
) -> None:
    platform.simulator.state.same_bill_for_duplicates = True
    first = await run(make_adapter(), outpatient())
    again = await run(make_adapter(), outpatient())
    assert again["billNo"] == first["billNo"] and platform.simulator.state.issued_count == 1


async def test_a_duplicate_answer_to_the_second_post_is_still_resolved(
    adapter: EInvoiceAdapter, platform: PlatformServer
) -> None:
    """The lookup after a lost answer can miss a bill the platform commits a moment later;
    the repeat then meets the platform's duplicate check and resolves to that bill."""
    platform.simulator.inject(Fault("drop", method=ISSUE))
    platform.simulator.inject(Fault("error", method="getBillByBusDate", result="S0000", text='{"billList": []}'))
    wire = Wire()
    reply = await run(adapter, outpatient(), wire)
    assert reply["resolved_by"] == "duplicate" and platform.simulator.state.issued_count == 1
    assert [step for step, _, _ in steps(wire)] == ["issue", "lookup", "issue_again", "lookup"]


async def test_the_lookup_asks_for_the_billing_point_and_skips_red_bills_of_the_bus_no(
    adapter: EInvoiceAdapter, platform: PlatformServer
) -> None:
    await run(adapter, outpatient("MZ-RED"))
    listed = platform.simulator.state.bills["MZ-RED"].listed()
    red = {**listed, "billNo": "9999999999", "dataType": "2"}
    platform.simulator.inject(Fault("error", method="getBillByBusDate", result="S0000",
                                    text=json.dumps({"total": 2, "billList": [red, listed]})))
    found = await run(adapter, {"method": "picture", "data": {"busNo": "MZ-RED", "busDateTime": "20261122094000123",
                                                              "placeCode": "KPD001"}})
    assert found["billNo"] == listed["billNo"]
    elsewhere = await failure(adapter, {"method": "picture", "data": {
        "busNo": "MZ-RED", "busDateTime": "20261122094000123", "placeCode": "KPD999"}}, Wire())
    assert elsewhere.detail["condition"] == "no_such_bill"


async def test_the_bill_number_is_a_business_key_of_the_reply(adapter: EInvoiceAdapter) -> None:
    issued = await run(adapter, outpatient())
    reply = Payload.from_json(issued)
    assert adapter.extract_reply_keys(reply) == {"invoice_no": [f"{issued['billBatchCode']}{issued['billNo']}"]}
    assert adapter.extract_reply_keys(Payload.from_json({"answer": "no bill"})) == {"invoice_no": []}
