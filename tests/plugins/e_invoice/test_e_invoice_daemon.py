"""The e_invoice channel inside a real daemon: HIS posts, gets 202, the outbox issues the
invoice against the simulated platform, and the stored reply holds the invoice number."""

from __future__ import annotations

import asyncio
import csv
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.daemon import Daemon
from plugins.e_invoice.simulator import Fault, PlatformServer, PlatformSimulator
from tests.e2e.harness import HIS_TOKEN, OPERATOR_TOKEN, final_status, his, operator, running_daemon, write_daemon_conf
from tests.plugins.e_invoice.invoices import APP_KEY, APPID, KEY_ENV, adapter_config, outpatient

CHANNEL = "einvoice"
SETTLE_SECONDS = 20.0  # an upper bound for waits, never an assertion on speed


def write_conf(root: Path, platform_base_url: str) -> Path:
    channel = {"destinations": [{
        "name": "fiscal", "adapter": "e_invoice",
        "breaker": {"fail_max": 3, "reset_timeout": 0.3},
        "retry": {"attempts": 2, "initial_backoff": 0.05},
        "outbox": {"initial_backoff": 0.05, "max_backoff": 0.3},
        "config": adapter_config(platform_base_url, timeout=2.0),
    }]}
    return write_daemon_conf(root, {CHANNEL: channel}, store_url=f"sqlite:///{root / 'hisbridge.db'}")


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_HIS_TOKEN", HIS_TOKEN)
    monkeypatch.setenv("E2E_OPERATOR_TOKEN", OPERATOR_TOKEN)
    monkeypatch.setenv(KEY_ENV, APP_KEY)


@pytest.fixture
async def daemon(tmp_path: Path, platform: PlatformServer) -> AsyncIterator[Daemon]:
    async with running_daemon(write_conf(tmp_path, platform.base_url)) as running:
        yield running


async def post_invoice(client: httpx.AsyncClient, daemon: Daemon, call: dict[str, Any]) -> httpx.Response:
    return await client.post(f"{daemon.url}/api/v1/channels/{CHANNEL}", json=call, headers=his())


async def reply_stage(client: httpx.AsyncClient, daemon: Daemon, message_id: str) -> dict[str, Any]:
    stages = (await client.get(f"{daemon.url}/api/v1/messages/{message_id}/stages", headers=operator())).json()
    replies = [s for s in stages["stages"] if s["name"] == "response_transformed"]
    assert replies
    return dict(json.loads(replies[-1]["body"]))


async def test_an_invoice_is_accepted_then_issued_by_the_outbox(
    daemon: Daemon, client: httpx.AsyncClient, platform: PlatformServer
) -> None:
    accepted = await post_invoice(client, daemon, outpatient())
    assert accepted.status_code == 202
    message_id = accepted.json()["message_id"]
    view = await final_status(client, daemon, message_id)
    assert view["status"] == "sent" and view["business_keys"]["bus_no"] == "MZ202611220001"
    reply = await reply_stage(client, daemon, message_id)
    bill = platform.simulator.state.bills["MZ202611220001"]
    assert (reply["billNo"], reply["random"], reply["resolved_by"]) == (bill.bill_no, bill.random, "issued")
    # the bill number, known only from the answer, finds the message
    assert await daemon.engine.store.find_by_key("invoice_no", f"{reply['billBatchCode']}{bill.bill_no}") == [
        message_id]


async def test_bad_amounts_are_refused_naming_the_field_and_nothing_is_sent(
    daemon: Daemon, client: httpx.AsyncClient, platform: PlatformServer
) -> None:
    call = outpatient()
    call["data"]["payChannelDetail"][0]["payChannelValue"] = "99.99"
    refused = await post_invoice(client, daemon, call)
    assert refused.status_code == 422
    body = refused.json()["error"]
    assert body["party"] == "his" and body["field"] == "data.payChannelDetail"
    assert platform.simulator.state.calls == []


async def test_a_dropped_answer_is_resolved_by_lookup_and_issued_once(
    daemon: Daemon, client: httpx.AsyncClient, platform: PlatformServer
) -> None:
    platform.simulator.inject(Fault("drop", method="invoiceEBillOutpatient"))
    platform.simulator.inject(Fault("drop", method="getBillByBusDate"))  # the first lookup is lost too
    accepted = await post_invoice(client, daemon, outpatient())
    view = await final_status(client, daemon, accepted.json()["message_id"])
    assert view["status"] == "sent"
    reply = await reply_stage(client, daemon, view["id"])
    # "lookup" normally; "duplicate" when the engine delivers the retried attempt twice (the
    # outbox can reclaim a delivery between the writes of one run's attempts: see the report)
    assert reply["resolved_by"] in ("lookup", "duplicate")
    bill = platform.simulator.state.bills["MZ202611220001"]
    assert (reply["billNo"], platform.simulator.state.issued_count) == (bill.bill_no, 1)


async def test_a_bad_answer_signature_is_dead_and_blamed_on_the_platform(
    daemon: Daemon, client: httpx.AsyncClient, platform: PlatformServer
) -> None:
    platform.simulator.inject(Fault("bad_signature", method="invoiceEBillOutpatient"))
    accepted = await post_invoice(client, daemon, outpatient())
    view = await final_status(client, daemon, accepted.json()["message_id"])
    assert view["status"] == "dead"
    assert (view["party"], view["rule_id"]) == ("third_party", "e_invoice.third_party.bad_signature")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_invoices_accepted_during_an_outage_are_issued_once_after_recovery(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    port = free_port()
    simulator = PlatformSimulator(appid=APPID, key=APP_KEY)
    server = PlatformServer(simulator, port=port)
    count = 100
    async with running_daemon(write_conf(tmp_path, server.base_url)) as daemon:
        answers = await asyncio.gather(*(
            post_invoice(client, daemon, outpatient(f"MZ{n:05d}")) for n in range(count)
        ))
        assert [a.status_code for a in answers] == [202] * count
        async with server:
            ids = [a.json()["message_id"] for a in answers]
            views = [await final_status(client, daemon, message_id) for message_id in ids]
        assert {v["status"] for v in views} == {"sent"}
    assert simulator.state.issued_count == count
    assert sorted(simulator.state.bills) == [f"MZ{n:05d}" for n in range(count)]


async def test_history_upload_skips_what_the_daemon_already_issued(
    tmp_path: Path, platform: PlatformServer, client: httpx.AsyncClient
) -> None:
    conf = write_conf(tmp_path, platform.base_url)
    async with running_daemon(conf) as daemon:
        accepted = await post_invoice(client, daemon, outpatient("MZ-DAEMON"))
        assert (await final_status(client, daemon, accepted.json()["message_id"]))["status"] == "sent"
    export, report = tmp_path / "history.csv", tmp_path / "result.csv"
    data = outpatient("MZ-DAEMON")["data"]
    columns = ["busNo", "busDateTime", "placeCode", "payee", "author", "payer", "totalAmt"]
    with export.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*columns, "payChannelDetail"])
        writer.writerow([*(data[name] for name in columns), json.dumps(data["payChannelDetail"])])
    calls_before = len(platform.simulator.state.calls)
    result = await asyncio.to_thread(CliRunner().invoke, main, [
        "--conf", str(conf), "e-invoice", "upload-history", "--csv", str(export), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "already_sent 1" in result.output
    assert len(platform.simulator.state.calls) == calls_before
