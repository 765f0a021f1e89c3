"""The drug_trace channel inside a real daemon: the pharmacy posts a sale with its trace
codes, gets 202, and the outbox uploads 3505 to the simulated centre; a duplicate sale and a
return of a code never sold are refused naming the code, and nothing of theirs is sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.daemon import Daemon
from plugins.yibao.simulator import Fault, SimulatorServer
from tests.e2e.harness import HIS_TOKEN, OPERATOR_TOKEN, final_status, his, running_daemon, write_daemon_conf
from tests.plugins.drug_trace.trace_data import AMOXICILLIN_PREFIX, adapter_config, code, sale

CHANNEL = "drugtrace"
SETTLE_SECONDS = 20.0  # an upper bound for waits, never an assertion on speed


def write_conf(root: Path, centre_url: str) -> Path:
    conf = root / "conf"
    conf.mkdir(parents=True)  # the product map is written there
    config = adapter_config(centre_url, conf)
    config["mapping_table"] = "conf/drug_trace_codes.csv"  # relative to the deployment's base dir
    del config["ledger_file"]  # the default, var/drug_trace_ledger.sqlite
    channel = {"destinations": [{
        "name": "centre", "adapter": "drug_trace",
        "breaker": {"fail_max": 3, "reset_timeout": 0.3},
        "retry": {"attempts": 1},
        "outbox": {"initial_backoff": 0.05, "max_backoff": 0.3},
        "config": config,
    }]}
    return write_daemon_conf(root, {CHANNEL: channel}, store_url=f"sqlite:///{root / 'hisbridge.db'}")


@pytest.fixture(autouse=True)
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_HIS_TOKEN", HIS_TOKEN)
    monkeypatch.setenv("E2E_OPERATOR_TOKEN", OPERATOR_TOKEN)


@pytest.fixture
async def daemon(tmp_path: Path, centre: SimulatorServer) -> AsyncIterator[Daemon]:
    async with running_daemon(write_conf(tmp_path, centre.url)) as running:
        yield running


async def post(client: httpx.AsyncClient, daemon: Daemon, call: dict[str, Any]) -> httpx.Response:
    return await client.post(f"{daemon.url}/api/v1/channels/{CHANNEL}", json=call, headers=his())


async def first_failed_attempt(client: httpx.AsyncClient, daemon: Daemon, message_id: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    while loop.time() < deadline:
        view = (await client.get(f"{daemon.url}/api/v1/messages/{message_id}", headers=his())).json()
        if view["deliveries"] and view["deliveries"][0]["attempt_rows"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no delivery attempt while the centre was down")


def uploaded_codes(centre: SimulatorServer) -> list[tuple[str, list[str]]]:
    return [
        (infno, [row["drug_trac_codg"] for row in input_["selinfo"]["drugtracinfo"]])
        for infno, input_ in centre.simulator.state.inventory
    ]


async def test_a_sale_is_accepted_then_uploaded_as_3505(
    daemon: Daemon, client: httpx.AsyncClient, centre: SimulatorServer
) -> None:
    accepted = await post(client, daemon, sale(1, 2))
    assert accepted.status_code == 202
    view = await final_status(client, daemon, accepted.json()["message_id"])
    assert view["status"] == "sent"
    assert view["business_keys"]["trace_code"] == [code(AMOXICILLIN_PREFIX, 1), code(AMOXICILLIN_PREFIX, 2)]
    assert uploaded_codes(centre) == [("3505", [code(AMOXICILLIN_PREFIX, 1), code(AMOXICILLIN_PREFIX, 2)])]


async def test_a_duplicate_sale_is_refused_before_upload_until_the_code_comes_back(
    daemon: Daemon, client: httpx.AsyncClient, centre: SimulatorServer
) -> None:
    first = await post(client, daemon, sale(1, document="LS-A"))
    assert first.status_code == 202
    duplicate = await post(client, daemon, sale(1, document="LS-B"))
    assert duplicate.status_code == 422
    error = duplicate.json()["error"]
    assert error["party"] == "his" and error["field"] == "trace_codes[0]"
    never_sold = await post(client, daemon, sale(9, kind="return", document="TH-A"))
    assert never_sold.status_code == 422 and never_sold.json()["error"]["field"] == "trace_codes[0]"

    returned = await post(client, daemon, sale(1, kind="return", document="TH-B"))
    resold = await post(client, daemon, sale(1, document="LS-C"))
    assert (returned.status_code, resold.status_code) == (202, 202)
    for accepted in (first, returned, resold):
        assert (await final_status(client, daemon, accepted.json()["message_id"]))["status"] == "sent"
    assert sorted(uploaded_codes(centre)) == sorted([
        ("3505", [code(AMOXICILLIN_PREFIX, 1)]), ("3506", [code(AMOXICILLIN_PREFIX, 1)]),
        ("3505", [code(AMOXICILLIN_PREFIX, 1)]),
    ])


async def test_a_sale_taken_during_a_centre_outage_is_uploaded_after_recovery(
    daemon: Daemon, client: httpx.AsyncClient, centre: SimulatorServer
) -> None:
    await centre.stop()
    accepted = await post(client, daemon, sale(5))
    assert accepted.status_code == 202
    message_id = accepted.json()["message_id"]
    await first_failed_attempt(client, daemon, message_id)
    await centre.start()
    view = await final_status(client, daemon, message_id)
    assert view["status"] == "sent"
    attempts = view["deliveries"][0]["attempt_rows"]
    assert attempts[0]["party"] == "network" and attempts[-1]["outcome"] == "ok"
    assert uploaded_codes(centre) == [("3505", [code(AMOXICILLIN_PREFIX, 5)])]


async def test_status_lists_what_was_uploaded_and_what_was_rejected_and_why(
    tmp_path: Path, centre: SimulatorServer, client: httpx.AsyncClient
) -> None:
    conf = write_conf(tmp_path, centre.url)
    async with running_daemon(conf) as daemon:
        sold = await post(client, daemon, sale(1, document="LS-A"))
        await post(client, daemon, sale(1, document="LS-B"))
        await post(client, daemon, {**sale(2), "trace_codes": ["8123"]})
        assert (await final_status(client, daemon, sold.json()["message_id"]))["status"] == "sent"
    result = await asyncio.to_thread(CliRunner().invoke, main, [
        "--conf", str(conf), "drug-trace", "status", "--since", "2000-01-01", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["captured"] == 3
    assert {(row["kind"], row["state"]): row["messages"] for row in report["counts"]} == {
        ("sale", "uploaded"): 1, ("sale", "rejected"): 2}
    reasons = sorted((row["document"], row["party"], row["reason"]) for row in report["rejected"])
    assert [party for _, party, _ in reasons] == ["his", "his"]
    assert "already sold by document sale:LS-A" in reasons[0][2] and reasons[0][0] == "LS-B"
    assert "trace_codes[0]" in reasons[1][2]
    table = await asyncio.to_thread(CliRunner().invoke, main, [
        "--conf", str(conf), "drug-trace", "status", "--since", "2000-01-01"])
    assert "3 captured" in table.output and "LS-B" in table.output and "[his]" in table.output


async def test_a_sale_whose_answer_was_lost_is_not_uploaded_twice(
    daemon: Daemon, client: httpx.AsyncClient, centre: SimulatorServer
) -> None:
    centre.simulator.inject(Fault(kind="drop", infno="3505"))
    accepted = await post(client, daemon, sale(6))
    view = await final_status(client, daemon, accepted.json()["message_id"])
    # a sale is not repeated blindly: an operator checks the centre, then replays or not
    assert (view["status"], view["party"], view["deliveries"][0]["attempts"]) == ("dead", "network", 1)
    assert "outcome is unknown" in view["reason"]
    assert uploaded_codes(centre) == [("3505", [code(AMOXICILLIN_PREFIX, 6)])]


async def test_every_code_of_a_sale_finds_it(
    tmp_path: Path, centre: SimulatorServer, client: httpx.AsyncClient
) -> None:
    conf = write_conf(tmp_path, centre.url)
    async with running_daemon(conf) as daemon:
        sold = await post(client, daemon, sale(11, 12, 13, document="LS-KEYS"))
        other = await post(client, daemon, sale(14, document="LS-OTHER"))
        message_id = sold.json()["message_id"]
        assert (await final_status(client, daemon, message_id))["status"] == "sent"
        assert (await final_status(client, daemon, other.json()["message_id"]))["status"] == "sent"
        for serial in (11, 12, 13):
            assert await daemon.engine.store.find_by_key("trace_code", code(AMOXICILLIN_PREFIX, serial)) == [message_id]
    listed = await asyncio.to_thread(CliRunner().invoke, main, [
        "--conf", str(conf), "messages", "--key", f"trace_code={code(AMOXICILLIN_PREFIX, 13)}", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["id"] for line in listed.output.splitlines() if line.strip()] == [message_id]
