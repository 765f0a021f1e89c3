"""Case codes inside a sale: expanded into their box codes through the simulated 码上放心
relation query before the upload reaches the simulated centre, over real sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from engine.adapters.base import Wire
from engine.errors import ConfigError, InputError
from engine.message import Payload
from plugins.drug_trace.adapter import DrugTraceAdapter
from plugins.drug_trace.codes import ProductMap
from plugins.drug_trace.simulator import RelationServer, RelationSimulator
from plugins.yibao.simulator import SimulatorServer
from tests.e2e.harness import HIS_TOKEN, OPERATOR_TOKEN, final_status, his, running_daemon, write_daemon_conf
from tests.plugins.drug_trace.trace_data import AMOXICILLIN_CASE_PREFIX, AMOXICILLIN_PREFIX, adapter_config, code, sale

APP_KEY = "23000001"
SECRET_ENV = "DRUG_TRACE_TEST_TOP_SECRET"
SECRET = "sim-top-secret"
CASE = code(AMOXICILLIN_CASE_PREFIX, 1)
BOXES = [code(AMOXICILLIN_PREFIX, serial) for serial in (41, 42, 43)]

MakeAdapter = Callable[..., DrugTraceAdapter]


@pytest.fixture
async def gateway(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RelationServer]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    simulator = RelationSimulator(app_key=APP_KEY, secret=SECRET)
    simulator.add_package(CASE, BOXES)
    async with RelationServer(simulator) as server:
        yield server


def relation_settings(gateway: RelationServer) -> dict[str, object]:
    return {"gateway_url": gateway.gateway_url, "app_key": APP_KEY, "app_secret": {"$env": SECRET_ENV},
            "ref_ent_id": "REFENT0001", "timeout": 5}


@pytest.fixture
def expanding(make_adapter: MakeAdapter, gateway: RelationServer) -> DrugTraceAdapter:
    return make_adapter(relation=relation_settings(gateway))


def uploaded(centre: SimulatorServer) -> list[tuple[str, list[str]]]:
    return [(infno, [row["drug_trac_codg"] for row in input_["selinfo"]["drugtracinfo"]])
            for infno, input_ in centre.simulator.state.inventory]


async def upload(adapter: DrugTraceAdapter, call: dict[str, object]) -> Payload:
    return await adapter.send(adapter.transform(Payload.from_json(call)), Wire())


async def test_a_case_code_in_a_sale_is_uploaded_as_its_box_codes(
    expanding: DrugTraceAdapter, centre: SimulatorServer
) -> None:
    call = {**sale(), "trace_codes": [code(AMOXICILLIN_PREFIX, 9), CASE]}
    reply = await upload(expanding, call)
    assert uploaded(centre) == [("3505", [code(AMOXICILLIN_PREFIX, 9), *BOXES])]
    assert reply.json()["expanded"] == {CASE: BOXES}
    assert expanding.extract_reply_keys(reply) == {"trace_code": BOXES}


async def test_a_box_of_the_case_sold_before_is_refused_naming_the_case(
    expanding: DrugTraceAdapter, centre: SimulatorServer
) -> None:
    await upload(expanding, {**sale(document="LS-BOX"), "trace_codes": [BOXES[1]]})
    with pytest.raises(InputError) as caught:
        await upload(expanding, {**sale(document="LS-CASE"), "trace_codes": [CASE]})
    assert caught.value.field == "trace_codes[0].boxes[1]" and "LS-BOX" in caught.value.reason
    assert uploaded(centre) == [("3505", [BOXES[1]])]


async def test_a_returned_case_takes_its_boxes_back(expanding: DrugTraceAdapter, centre: SimulatorServer) -> None:
    await upload(expanding, {**sale(document="LS-CASE"), "trace_codes": [CASE]})
    await upload(expanding, {**sale(kind="return", document="TH-CASE"), "trace_codes": [CASE]})
    resold = await upload(expanding, {**sale(document="LS-AGAIN"), "trace_codes": [BOXES[0]]})
    assert resold.json()["output"]["retRslt"] == "1"
    assert [infno for infno, _ in uploaded(centre)] == ["3505", "3506", "3505"]
    assert uploaded(centre)[1] == ("3506", BOXES)


async def test_a_case_the_relation_query_does_not_know_is_his_input_at_its_position(
    expanding: DrugTraceAdapter, centre: SimulatorServer
) -> None:
    with pytest.raises(InputError) as caught:
        unknown_case = code(AMOXICILLIN_CASE_PREFIX, 99)
        await upload(expanding, {**sale(), "trace_codes": [code(AMOXICILLIN_PREFIX, 5), unknown_case]})
    assert caught.value.field == "trace_codes[1]"
    assert uploaded(centre) == []


async def test_without_the_relation_query_a_case_code_is_uploaded_as_given(
    make_adapter: MakeAdapter, centre: SimulatorServer
) -> None:
    await upload(make_adapter(), {**sale(), "trace_codes": [CASE]})
    assert uploaded(centre) == [("3505", [CASE])]


def test_the_mapping_table_names_large_packages_or_is_refused(tmp_path: Path) -> None:
    table = tmp_path / "codes.csv"
    table.write_text("trace_prefix,med_list_codg,package\n8123456,X1,large\n8123457,X1,\n", encoding="utf-8")
    products = ProductMap.load(table)
    assert (products.is_large(CASE), products.is_large(BOXES[0])) == (True, False)
    table.write_text("trace_prefix,med_list_codg,package\n8123456,X1,pallet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2: package must be small or large, not 'pallet'"):
        ProductMap.load(table)


async def test_in_the_daemon_any_box_code_of_an_expanded_case_finds_the_sale(
    tmp_path: Path, centre: SimulatorServer, gateway: RelationServer, client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("E2E_HIS_TOKEN", HIS_TOKEN)
    monkeypatch.setenv("E2E_OPERATOR_TOKEN", OPERATOR_TOKEN)
    conf = tmp_path / "conf"
    conf.mkdir()
    config = adapter_config(centre.url, conf, relation=relation_settings(gateway))
    channel = {"destinations": [{"name": "centre", "adapter": "drug_trace", "retry": {"attempts": 1},
                                 "outbox": {"initial_backoff": 0.05, "max_backoff": 0.3}, "config": config}]}
    write_daemon_conf(tmp_path, {"pharmacy": channel}, store_url=f"sqlite:///{tmp_path / 'hisbridge.db'}")
    async with running_daemon(conf) as daemon:
        accepted = await client.post(f"{daemon.url}/api/v1/channels/pharmacy", headers=his(),
                                     json={**sale(), "trace_codes": [CASE]})
        message_id = accepted.json()["message_id"]
        assert (await final_status(client, daemon, message_id))["status"] == "sent"
        for box in (CASE, *BOXES):
            assert await daemon.engine.store.find_by_key("trace_code", box) == [message_id]
    assert uploaded(centre) == [("3505", BOXES)]
