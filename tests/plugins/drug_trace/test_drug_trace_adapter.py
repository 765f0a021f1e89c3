"""The drug_trace adapter: HIS calls become 3505/3506/3501/3502 with drugtracinfo, checked
before anything is sent, and uploaded to a simulated centre over a real socket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.adapters.base import Wire
from engine.errors import InputError
from engine.message import Payload
from plugins.drug_trace.adapter import DrugTraceAdapter
from plugins.yibao.simulator import SimulatorServer
from tests.plugins.drug_trace.trace_data import (
    AMOXICILLIN_CODE,
    AMOXICILLIN_PREFIX,
    IBUPROFEN_CODE,
    code,
    sale,
)

MakeAdapter = Callable[..., DrugTraceAdapter]


def build(adapter: DrugTraceAdapter, call: dict[str, Any]) -> dict[str, Any]:
    built: dict[str, Any] = adapter.transform(Payload.from_json(call)).json()
    return built


def refusal(adapter: DrugTraceAdapter, call: dict[str, Any]) -> InputError:
    with pytest.raises(InputError) as caught:
        adapter.transform(Payload.from_json(call))
    assert caught.value.party == "his"
    return caught.value


async def test_a_sale_becomes_3505_with_the_mapped_catalogue_code(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    built = build(adapter, sale(1, 2))
    selinfo = built["input"]["selinfo"]
    assert built["infno"] == "3505" and selinfo["med_list_codg"] == AMOXICILLIN_CODE
    assert selinfo["drugtracinfo"] == [
        {"drug_trac_codg": code(AMOXICILLIN_PREFIX, 1)}, {"drug_trac_codg": code(AMOXICILLIN_PREFIX, 2)}
    ]
    assert built["operator"] == {"opter": "0201", "opter_name": "测试药师"}
    assert not adapter.is_idempotent(Payload.from_json(built))


@pytest.mark.parametrize(
    ("kind", "infno", "node"),
    [("return", "3506", "selinfo"), ("stock", "3501", "invinfo"), ("stock_change", "3502", "invinfo")],
)
async def test_each_kind_has_its_transaction_and_node(
    make_adapter: MakeAdapter, kind: str, infno: str, node: str
) -> None:
    adapter = make_adapter()
    if kind == "return":
        build(adapter, sale(1))
    records: dict[str, dict[str, Any]] = {
        "stock": {"fixmedins_hilist_id": "YP0001", "fixmedins_hilist_name": "阿莫西林胶囊", "rx_flag": "1",
                  "invdate": "2026-11-22", "inv_cnt": 10, "fixmedins_bchno": "PC240312"},
        "stock_change": {"inv_chg_type": "104", "fixmedins_hilist_id": "YP0001",
                         "fixmedins_hilist_name": "阿莫西林胶囊", "fixmedins_bchno": "PC240312",
                         "pric": 12.5, "cnt": 1, "rx_flag": "1",
                         "inv_chg_time": "2026-11-22 10:00:00"},
    }
    call = sale(1, kind=kind, document="TH202611220001")
    if kind in records:
        call["record"] = records[kind]
    built = build(adapter, call)
    assert built["infno"] == infno and built["input"][node]["drugtracinfo"][0]["drug_trac_codg"] == code(
        AMOXICILLIN_PREFIX, 1
    )
    assert adapter.is_idempotent(Payload.from_json(built)) is (infno == "3501")


async def test_bad_input_is_refused_naming_the_field(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    assert refusal(adapter, {**sale(1), "kind": "purchase"}).field == "kind"
    assert refusal(adapter, {**sale(1), "trace_codes": ["8123457"]}).field == "trace_codes[0]"
    assert refusal(adapter, sale(1, med_list_codg=IBUPROFEN_CODE)).field == "record.med_list_codg"
    assert refusal(adapter, sale(1, sel_retn_cnt="two")).field == "record.sel_retn_cnt"  # as HIS wrote it
    assert refusal(adapter, sale(1, rtal_docno="")).field == "record.rtal_docno"
    assert refusal(adapter, {**sale(1), "insuplc_admdvs": "44"}).field == "insuplc_admdvs"


async def test_a_duplicate_sale_is_flagged_before_upload_and_a_return_frees_the_code(
    make_adapter: MakeAdapter,
) -> None:
    adapter = make_adapter()
    build(adapter, sale(1, document="LS-A"))
    build(adapter, sale(1, document="LS-A"))  # the outbox may build the same message again
    duplicate = refusal(adapter, sale(2, 1, document="LS-B"))
    assert duplicate.field == "trace_codes[1]" and "already sold by document sale:LS-A" in duplicate.reason
    assert "never sold" in refusal(adapter, sale(3, kind="return", document="TH-A")).reason
    build(adapter, sale(1, kind="return", document="TH-A"))
    build(adapter, sale(1, document="LS-C"))


async def test_business_keys_name_every_code_and_the_documents(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    keys = adapter.extract_keys(Payload.from_json(sale(7, 8, setl_id="SETL-FAKE-1")))
    assert next(iter(keys)) == "rtal_docno"
    assert keys == {"kind": "sale", "trace_code": [code(AMOXICILLIN_PREFIX, 7), code(AMOXICILLIN_PREFIX, 8)],
                    "rtal_docno": "LS202611220001", "setl_id": "SETL-FAKE-1"}


async def test_an_upload_reaches_the_centre_with_its_codes(make_adapter: MakeAdapter, centre: SimulatorServer) -> None:
    adapter = make_adapter()
    wire = Wire()
    answer = (await adapter.send(adapter.transform(Payload.from_json(sale(1, 2))), wire)).json()
    assert answer["infno"] == "3505" and answer["output"] == {"retRslt": "1", "msgRslt": "成功"}
    [(infno, input_)] = centre.simulator.state.inventory
    assert infno == "3505"
    assert [row["drug_trac_codg"] for row in input_["selinfo"]["drugtracinfo"]] == [
        code(AMOXICILLIN_PREFIX, 1), code(AMOXICILLIN_PREFIX, 2)
    ]
    assert [record.detail.get("step") for record in wire.records][-1] == "upload"
