"""The batch ("A") variants: several records of one call become one 3505A (selinfoDetail) or
3501A (invinfoDetail) upload, where the deployment turns them on; refusals name the item."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.adapters.base import Wire
from engine.errors import ConfigError, InputError
from engine.message import Payload
from plugins.drug_trace.adapter import DrugTraceAdapter
from plugins.drug_trace.codes import DEFAULT_PATTERN, CodeRules, ProductMap
from plugins.drug_trace.ledger import SaleLedger
from plugins.drug_trace.uploads import BATCH_INFNOS, UploadBuilder, call_keys
from plugins.yibao.api import Operator, catalogue
from plugins.yibao.simulator import SimulatorServer
from tests.plugins.drug_trace.trace_data import (
    AMOXICILLIN_PREFIX,
    IBUPROFEN_CODE,
    IBUPROFEN_PREFIX,
    code,
    sale,
    sale_record,
    write_mapping,
)

MakeAdapter = Callable[..., DrugTraceAdapter]


@pytest.fixture
def builder(tmp_path: Path) -> Iterator[UploadBuilder]:
    rules = CodeRules(re.compile(DEFAULT_PATTERN), ProductMap.load(write_mapping(tmp_path)))
    ledger = SaleLedger(tmp_path / "ledger.sqlite")
    yield UploadBuilder(rules, ledger, Operator("0201", "测试药师"), batch_variants=True)
    ledger.close()


def two_drugs(document: str = "LS-BATCH", *, kind: str = "sale") -> dict[str, Any]:
    return {"kind": kind, "items": [
        {"record": sale_record(document), "trace_codes": [code(AMOXICILLIN_PREFIX, 1), code(AMOXICILLIN_PREFIX, 2)]},
        {"record": sale_record(document, fixmedins_hilist_id="YP0002", fixmedins_hilist_name="布洛芬片"),
         "trace_codes": [code(IBUPROFEN_PREFIX, 1)]},
    ]}


def build(builder: UploadBuilder, call: dict[str, Any]) -> dict[str, Any]:
    built: dict[str, Any] = builder.build(Payload.from_json(call)).json()
    return built


def refused(builder: UploadBuilder, call: dict[str, Any]) -> InputError:
    with pytest.raises(InputError) as caught:
        builder.build(Payload.from_json(call))
    assert caught.value.party == "his"
    return caught.value


def test_a_sale_of_two_drugs_becomes_one_3505a_with_a_row_each(builder: UploadBuilder) -> None:
    upload = build(builder, two_drugs())
    assert upload["infno"] == "3505A"
    rows = upload["input"]["selinfoDetail"]
    assert [[c["drug_trac_codg"] for c in row["drugtracinfo"]] for row in rows] == [
        [code(AMOXICILLIN_PREFIX, 1), code(AMOXICILLIN_PREFIX, 2)], [code(IBUPROFEN_PREFIX, 1)]]
    assert rows[1]["med_list_codg"] == IBUPROFEN_CODE
    assert call_keys(Payload.from_json(two_drugs()))["trace_code"] == [
        code(AMOXICILLIN_PREFIX, 1), code(AMOXICILLIN_PREFIX, 2), code(IBUPROFEN_PREFIX, 1)]


def test_a_stock_count_of_two_items_becomes_one_3501a(builder: UploadBuilder) -> None:
    stock = {"med_list_codg": IBUPROFEN_CODE, "fixmedins_hilist_id": "YP0002", "fixmedins_hilist_name": "布洛芬片",
             "rx_flag": "0", "invdate": "2026-11-22", "inv_cnt": 1, "fixmedins_bchno": "PC1"}
    upload = build(builder, {"kind": "stock", "items": [
        {"record": stock, "trace_codes": [code(IBUPROFEN_PREFIX, 5)]},
        {"record": {**stock, "fixmedins_bchno": "PC2"}, "trace_codes": [code(IBUPROFEN_PREFIX, 6)]}]})
    assert upload["infno"] == "3501A" and len(upload["input"]["invinfoDetail"]) == 2


def test_refusals_name_the_item_as_his_wrote_it(builder: UploadBuilder) -> None:
    bad_code = two_drugs()
    bad_code["items"][1]["trace_codes"] = ["8765432"]
    assert refused(builder, bad_code).field == "items[1].trace_codes[0]"
    bad_field = two_drugs()
    bad_field["items"][1]["record"]["sel_retn_cnt"] = "two"
    assert refused(builder, bad_field).field == "items[1].record.sel_retn_cnt"
    twice = two_drugs()
    twice["items"][1] = {**twice["items"][0]}
    assert refused(builder, twice).field == "items[1].trace_codes[0]"


def test_a_code_sold_in_a_batch_cannot_be_sold_again_and_a_refused_batch_sells_nothing(
    builder: UploadBuilder,
) -> None:
    build(builder, two_drugs("LS-1"))
    again = {"kind": "sale", "items": [
        {"record": sale_record("LS-2"), "trace_codes": [code(AMOXICILLIN_PREFIX, 9)]},
        {"record": sale_record("LS-2"), "trace_codes": [code(AMOXICILLIN_PREFIX, 2)]}]}
    error = refused(builder, again)
    assert error.field == "items[1].trace_codes[0]" and "sale:LS-1" in error.reason
    build(builder, {**sale(9, document="LS-3")})  # code 9 was not recorded by the refused batch


def test_items_need_the_batch_variants_and_a_kind_that_has_one(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    with pytest.raises(InputError, match="batch_variants is off") as off:
        adapter.transform(Payload.from_json(two_drugs()))
    assert off.value.field == "items"
    with pytest.raises(InputError, match="return has no batch variant"):
        adapter.transform(Payload.from_json(two_drugs(kind="return")))


def test_batch_variants_start_only_when_the_yibao_catalogue_has_them(make_adapter: MakeAdapter) -> None:
    missing = sorted(BATCH_INFNOS - set(catalogue()))
    if missing:
        with pytest.raises(ConfigError, match=f"the yibao catalogue has no {', '.join(missing)}"):
            make_adapter(batch_variants=True)
    else:
        assert make_adapter(batch_variants=True).uploads.batch_variants


async def test_a_batch_sale_reaches_the_centre_as_one_3505a(make_adapter: MakeAdapter, centre: SimulatorServer) -> None:
    adapter = make_adapter(batch_variants=True)
    answer = (await adapter.send(adapter.transform(Payload.from_json(two_drugs())), Wire())).json()
    assert answer["infno"] == "3505A" and answer["output"]["result"]["retRslt"] == "1"
    [(infno, input_)] = centre.simulator.state.inventory
    assert infno == "3505A"
    assert [[c["drug_trac_codg"] for c in row["drugtracinfo"]] for row in input_["selinfoDetail"]] == [
        [code(AMOXICILLIN_PREFIX, 1), code(AMOXICILLIN_PREFIX, 2)], [code(IBUPROFEN_PREFIX, 1)]]
