"""pacs_soap against the simulated PACS's real SOAP service (WSDL fetched over HTTP by zeep)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.adapters.base import Wire
from engine.errors import InputError, OutcomeUnknownError, PermanentError
from engine.message import Payload
from plugins.pacs.simulator import Fault, PacsServer
from plugins.pacs.soap_adapter import PacsSoapAdapter
from tests.plugins.pacs.conftest import exam_order

MakeAdapter = Callable[..., PacsSoapAdapter]


async def place(adapter: PacsSoapAdapter, order: dict[str, object], wire: Wire | None = None) -> Payload:
    return await adapter.send(adapter.transform(Payload.from_json(order)), wire or Wire())


async def test_new_change_cancel_reach_the_pacs(make_soap_adapter: MakeAdapter, pacs: PacsServer) -> None:
    adapter = make_soap_adapter()
    answer = adapter.transform_response(await place(adapter, exam_order("ACC2001")))
    assert answer.json()["accession_number"] == "ACC2001" and answer.json()["accepted"] is True
    assert answer.json()["study_instance_uid"].startswith("2.25.")

    await place(adapter, exam_order("ACC2001", "change", room="CT2"))
    await place(adapter, {"action": "cancel", "accession_number": "ACC2001", "reason": "患者取消"})

    exam = pacs.simulator.state.exams["ACC2001"]
    assert exam.history == ["new", "change", "cancel"] and exam.status == "cancelled"
    assert exam.order["patientName"] == "测试患者甲" and exam.order["scheduledAt"] == "2026-11-23T09:30:00"
    assert [call.operation for call in pacs.simulator.state.calls] == [
        "PlaceExamOrder",
        "ChangeExamOrder",
        "CancelExamOrder",
    ]


async def test_the_exact_envelopes_are_on_the_wire(make_soap_adapter: MakeAdapter) -> None:
    wire = Wire()
    await place(make_soap_adapter(), exam_order("ACC2002"), wire)
    record = wire.current
    assert record.sent is not None and record.response is not None
    assert b"<ns0:accessionNumber>ACC2002</ns0:accessionNumber>" in record.sent.body
    assert record.sent.headers["soapaction"] == '"urn:hisbridge:pacs:exam-order:1#PlaceExamOrder"'
    assert b"<resultCode>0</resultCode>" in record.response.body
    assert record.detail["soap_operation"] == "PlaceExamOrder"


def test_keys_come_from_what_his_sent(make_soap_adapter: MakeAdapter) -> None:
    keys = make_soap_adapter().extract_keys(Payload.from_json(exam_order("ACC2003")))
    assert keys == {"accession_number": "ACC2003", "requested_procedure_id": "RP2003", "scheduled_step_id": "SPS2003"}


def test_an_incomplete_new_order_is_his_fault(make_soap_adapter: MakeAdapter) -> None:
    order = exam_order("ACC2004")
    del order["modality"]
    with pytest.raises(InputError) as raised:
        make_soap_adapter().transform(Payload.from_json(order))
    assert "modality" in str(raised.value)


async def test_unknown_accession_is_a_soap_fault_with_its_text(make_soap_adapter: MakeAdapter) -> None:
    with pytest.raises(PermanentError) as raised:
        await place(make_soap_adapter(), {"action": "cancel", "accession_number": "NOPE1"})
    detail = raised.value.detail
    assert (detail["condition"], detail["faultcode"]) == ("soap_fault", "Client")
    assert "NOPE1 not found" in str(detail["faultstring"])


async def test_a_duplicate_accession_is_a_result_code(make_soap_adapter: MakeAdapter) -> None:
    adapter = make_soap_adapter()
    await place(adapter, exam_order("ACC2005"))
    with pytest.raises(PermanentError) as raised:
        await place(adapter, exam_order("ACC2005"))
    assert raised.value.detail["condition"] == "pacs_rejected"
    assert raised.value.detail["result_code"] == 2
    assert "已存在" in str(raised.value.detail["result_message"])


async def test_injected_server_fault(make_soap_adapter: MakeAdapter, pacs: PacsServer) -> None:
    pacs.simulator.state.inject(Fault("soap_fault", text="数据库连接失败"))
    with pytest.raises(PermanentError) as raised:
        await place(make_soap_adapter(), exam_order("ACC2006"))
    assert raised.value.detail["faultstring"] == "数据库连接失败"
    assert raised.value.detail["faultcode"] == "Server"


async def test_malformed_answer(make_soap_adapter: MakeAdapter, pacs: PacsServer) -> None:
    pacs.simulator.state.inject(Fault("malformed"))
    wire = Wire()
    with pytest.raises(PermanentError) as raised:
        await place(make_soap_adapter(), exam_order("ACC2007"), wire)
    assert raised.value.detail["condition"] == "malformed_xml"
    assert wire.current.response is not None and b"<broken" in wire.current.response.body


async def test_slow_answer_times_out(make_soap_adapter: MakeAdapter, pacs: PacsServer) -> None:
    adapter = make_soap_adapter(timeout=0.2)
    await adapter.soap.operations()  # WSDL first, so only the call meets the slow answer
    pacs.simulator.state.inject(Fault("slow", delay=0.6))
    with pytest.raises(OutcomeUnknownError) as raised:
        await place(adapter, exam_order("ACC2008"))
    assert raised.value.detail["condition"] == "timeout"


async def test_renamed_operations(make_soap_adapter: MakeAdapter) -> None:
    adapter = make_soap_adapter(operations={"new": "RegisterExam"})
    with pytest.raises(PermanentError) as raised:
        await place(adapter, exam_order("ACC2009"))
    assert raised.value.detail["condition"] == "wsdl" and "RegisterExam" in str(raised.value)
