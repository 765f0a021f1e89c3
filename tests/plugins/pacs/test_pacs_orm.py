"""ORM^O01 for exam orders: fields by the HL7-order-to-MWL mapping, and the pacs_hl7 adapter
against a real MLLP receiver that answers AA or AE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest
from hl7apy.parser import parse_message

from engine.adapters.base import Wire
from engine.errors import PermanentError
from engine.message import Payload
from engine.mllp.ack import AckError, Outcome, acknowledge
from engine.mllp.framing import MllpDecoder, encode
from engine.transports.http import HttpClients
from plugins.pacs.hl7_adapter import PacsHl7Adapter, PacsHl7Config
from plugins.pacs.model import ExamOrder
from plugins.pacs.orm import build_orm
from tests.plugins.pacs.conftest import exam_order


def fields(message: str, segment: str) -> list[str]:
    line = next(line for line in message.split("\r") if line.startswith(segment + "|"))
    return line.split("|")


def test_new_order_carries_the_mwl_keys() -> None:
    message = build_orm(ExamOrder.model_validate(exam_order("ACC4001")), control_id="C1", now=datetime(2026, 11, 22, 9))
    msh, orc, obr = fields(message, "MSH"), fields(message, "ORC"), fields(message, "OBR")
    assert (msh[8], msh[9], msh[11], msh[17]) == ("ORM^O01", "C1", "2.3.1", "UNICODE UTF-8")
    assert (orc[1], orc[5], orc[7], orc[18]) == ("NW", "SC", "1^once^^20261123093000^^R", "CT_ROOM1")
    assert (obr[18], obr[19], obr[20], obr[24]) == ("ACC4001", "RP4001", "SPS4001", "CT")
    assert obr[4] == "CT0101^头颅CT平扫^HIS"
    assert fields(message, "PID")[5] == "测试患者甲"


@pytest.mark.parametrize(("action", "control", "status"), [("change", "XO", "SC"), ("cancel", "CA", "CA")])
def test_change_and_cancel_controls(action: str, control: str, status: str) -> None:
    order = exam_order("ACC4002", action) if action == "change" else {"action": "cancel", "accession_number": "ACC4002"}
    orc = fields(build_orm(ExamOrder.model_validate(order)), "ORC")
    assert (orc[1], orc[5]) == (control, status)


def test_separators_in_text_are_escaped() -> None:
    order = exam_order("ACC4003", patient={"id": "P-TEST-9", "name": "测试|乙^丙", "sex": "M"})
    assert fields(build_orm(ExamOrder.model_validate(order)), "PID")[5] == "测试\\F\\乙\\S\\丙"


def test_hl7apy_reads_it_as_an_orm_o01() -> None:
    message = parse_message(build_orm(ExamOrder.model_validate(exam_order("ACC4004"))), find_groups=False)
    assert message.msh.msh_9.to_er7() == "ORM^O01"
    assert [segment.name for segment in message.children] == ["MSH", "PID", "PV1", "ORC", "OBR"]


# -- over MLLP ------------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[int, list[bytes], Callable[[str], None]]]:
    """A PACS HL7 receiver: ACKs AA, or AE with a text once `refuse(text)` was called."""
    received: list[bytes] = []
    refusal: dict[str, Any] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = MllpDecoder()
        while data := await reader.read(65536):
            for message in decoder.feed(data):
                received.append(message)
                if refusal:
                    reply = acknowledge(message, Outcome.ERROR, error=AckError("204", refusal.pop("text")))
                else:
                    reply = acknowledge(message, Outcome.ACCEPT)
                writer.write(encode(reply.payload))
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, received, lambda text: refusal.update(text=text)
    server.close()
    await server.wait_closed()


async def test_orders_over_mllp_are_acknowledged(receiver: tuple[int, list[bytes], Callable[[str], None]]) -> None:
    port, received, refuse = receiver
    clients = HttpClients()
    adapter = PacsHl7Adapter(
        PacsHl7Config.model_validate({"host": "127.0.0.1", "port": port, "ack_timeout": 5}), clients
    )
    try:
        wire = Wire()
        request = adapter.transform(Payload.from_json(exam_order("ACC4005")))
        await adapter.send(request, wire)
        assert received == [request.body] and wire.current.ack_code == "AA"
        assert adapter.extract_keys(Payload.from_json(exam_order("ACC4005")))["accession_number"] == "ACC4005"

        refuse("检查号 ACC4006 不存在")
        with pytest.raises(PermanentError) as raised:
            await adapter.send(adapter.transform(Payload.from_json(exam_order("ACC4006", "change"))), Wire())
        assert raised.value.detail["ack_code"] == "AE"
        assert "ACC4006 不存在" in str(raised.value.detail["ack_text"])
    finally:
        await adapter.aclose()
        await clients.aclose()
