"""An upload the centre refuses because the sign-in is no longer valid is signed in again and
sent once more under a fresh msgid: nothing was recorded by the refused call, so the repeat
cannot duplicate the sale. A second refusal ends it (no loop)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.adapters.base import Wire
from engine.errors import PermanentError
from engine.message import Payload
from plugins.drug_trace.adapter import DrugTraceAdapter
from plugins.yibao.simulator import Fault, SimulatorServer
from tests.plugins.drug_trace.trace_data import AMOXICILLIN_PREFIX, code, sale

MakeAdapter = Callable[..., DrugTraceAdapter]


def steps(wire: Wire) -> list[tuple[object, object]]:
    return [(record.detail.get("step"), record.detail.get("infno")) for record in wire.records]


@pytest.mark.parametrize("kind", ["sale", "return"])
async def test_an_upload_refused_for_an_invalid_sign_in_signs_in_again_and_is_sent_once(
    make_adapter: MakeAdapter, centre: SimulatorServer, kind: str
) -> None:
    adapter = make_adapter()
    if kind == "return":
        await adapter.send(adapter.transform(Payload.from_json(sale(1, document="LS-1"))), Wire())
    infno = {"sale": "3505", "return": "3506"}[kind]
    centre.simulator.inject(Fault("sign_in_invalid", infno))
    wire = Wire()
    answer = (await adapter.send(adapter.transform(Payload.from_json(sale(1, kind=kind, document="X-1"))), wire)).json()
    assert answer["output"]["retRslt"] == "1"
    assert [sent for sent, _ in centre.simulator.state.inventory].count(infno) == 1
    assert steps(wire)[-3:] == [("upload", infno), ("sign_in", "9001"), ("upload_after_sign_in", infno)]
    msgids = [record.detail.get("msgid") for record in wire.records if record.detail.get("infno") == infno]
    assert len(set(msgids)) == 2


async def test_a_second_refusal_after_signing_in_again_ends_the_upload(
    make_adapter: MakeAdapter, centre: SimulatorServer
) -> None:
    adapter = make_adapter()
    centre.simulator.inject(Fault("sign_in_invalid", "3505", count=2))
    wire = Wire()
    with pytest.raises(PermanentError, match="签到"):
        await adapter.send(adapter.transform(Payload.from_json(sale(2))), wire)
    assert centre.simulator.state.inventory == []
    assert [step for step, _ in steps(wire)].count("sign_in") == 2


async def test_other_refusals_are_not_repeated(make_adapter: MakeAdapter, centre: SimulatorServer) -> None:
    adapter = make_adapter()
    centre.simulator.inject(Fault("error", "3505", err_msg="追溯码格式错误"))
    wire = Wire()
    with pytest.raises(PermanentError, match="追溯码格式错误"):
        await adapter.send(adapter.transform(Payload.from_json(sale(3))), wire)
    assert [step for step, _ in steps(wire)] == ["sign_in", "upload"]
    assert code(AMOXICILLIN_PREFIX, 3) not in str(centre.simulator.state.inventory)
