"""pacs_rest against the simulated PACS's REST endpoints on a real socket."""

from __future__ import annotations

import pytest

from engine.adapters.base import Wire
from engine.errors import InputError, PermanentError, TransientError
from engine.message import Payload
from plugins.pacs.rest_adapter import PacsRestAdapter
from plugins.pacs.simulator import Fault, PacsServer
from tests.plugins.pacs.conftest import exam_order


async def send(adapter: PacsRestAdapter, order: dict[str, object], wire: Wire | None = None) -> Payload:
    return await adapter.send(adapter.transform(Payload.from_json(order)), wire or Wire())


async def test_new_change_cancel(rest_adapter: PacsRestAdapter, pacs: PacsServer) -> None:
    wire = Wire()
    created = await send(rest_adapter, exam_order("ACC3001"), wire)
    assert created.json()["status"] == "scheduled" and wire.current.status_code == 201
    assert wire.current.sent is not None and wire.current.sent.json()["accession_number"] == "ACC3001"
    await send(rest_adapter, exam_order("ACC3001", "change", room="CT2"))
    cancelled = await send(rest_adapter, {"action": "cancel", "accession_number": "ACC3001"})
    assert cancelled.json()["history"] == ["new", "change", "cancel"]
    assert [(c.style, c.operation, c.outcome) for c in pacs.simulator.state.calls] == [
        ("rest", "new", "accepted"),
        ("rest", "change", "accepted"),
        ("rest", "cancel", "accepted"),
    ]


async def test_unknown_accession(rest_adapter: PacsRestAdapter) -> None:
    with pytest.raises(PermanentError) as raised:
        await send(rest_adapter, exam_order("ACC3002", "change"))
    detail = raised.value.detail
    assert (detail["condition"], detail["accession_number"], detail["http_status"]) == (
        "unknown_accession",
        "ACC3002",
        404,
    )
    assert detail["pacs_code"] == "1"


async def test_duplicate_accession_is_a_conflict(rest_adapter: PacsRestAdapter) -> None:
    await send(rest_adapter, exam_order("ACC3003"))
    with pytest.raises(PermanentError) as raised:
        await send(rest_adapter, exam_order("ACC3003"))
    assert raised.value.detail["http_status"] == 409
    assert "已存在" in str(raised.value.detail["pacs_message"])


async def test_server_error_is_transient(rest_adapter: PacsRestAdapter, pacs: PacsServer) -> None:
    pacs.simulator.state.inject(Fault("http500"))
    with pytest.raises(TransientError) as raised:
        await send(rest_adapter, exam_order("ACC3004"))
    assert raised.value.detail["http_status"] == 500


def test_an_accession_that_would_break_the_url_is_his_fault(rest_adapter: PacsRestAdapter) -> None:
    with pytest.raises(InputError) as raised:
        rest_adapter.transform(Payload.from_json(exam_order("A/B", "cancel")))
    assert raised.value.field == "accession_number"
