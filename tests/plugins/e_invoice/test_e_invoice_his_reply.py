"""How HIS learns the invoice number: polling the plugin's route, or a callback it configured."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.errors import ConfigError
from engine.serving import LocalServer
from plugins.e_invoice.simulator import Fault, PlatformServer
from tests.e2e.harness import his, operator, running_daemon
from tests.plugins.e_invoice.invoices import outpatient
from tests.plugins.e_invoice.test_e_invoice_daemon import (
    CHANNEL,
    final_status,
    post_invoice,
    write_conf,
)

pytest_plugins = ["tests.plugins.e_invoice.test_e_invoice_daemon"]  # its fixtures: daemon, client, secrets

CALLBACK_WAIT_SECONDS = 20.0


class HisReceiver(LocalServer):
    """HIS's callback endpoint on a real socket; collects what the engine posts."""

    def __init__(self) -> None:
        super().__init__(Starlette(routes=[Route("/notify", self._notify, methods=["POST"])]))
        self.received: asyncio.Queue[tuple[dict[str, Any], str]] = asyncio.Queue()

    async def _notify(self, request: Request) -> Response:
        self.received.put_nowait((json.loads(await request.body()), request.headers.get("authorization", "")))
        return Response(status_code=204)

    @property
    def notify_url(self) -> str:
        return f"{self.url}/notify"


async def test_his_polls_the_invoice_number(daemon: Any, client: httpx.AsyncClient, platform: PlatformServer) -> None:
    accepted = await post_invoice(client, daemon, outpatient())
    message_id = accepted.json()["message_id"]
    await final_status(client, daemon, message_id)
    polled = await client.get(f"{daemon.url}/api/v1/e-invoice/messages/{message_id}", headers=his())
    assert polled.status_code == 200
    body = polled.json()
    bill = platform.simulator.state.bills["MZ202611220001"]
    assert (body["status"], body["billNo"], body["random"]) == ("sent", bill.bill_no, bill.random)
    assert body["pictureUrl"] and "payer" not in body


async def test_polling_an_unknown_message_is_404(daemon: Any, client: httpx.AsyncClient) -> None:
    polled = await client.get(f"{daemon.url}/api/v1/e-invoice/messages/01NOSUCHMESSAGE", headers=his())
    assert polled.status_code == 404


@pytest.fixture
async def receiver() -> AsyncIterator[HisReceiver]:
    async with HisReceiver() as running:
        yield running


async def test_a_configured_callback_gets_the_invoice_and_the_failure(
    tmp_path: Path, platform: PlatformServer, receiver: HisReceiver, client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EINVOICE_TEST_CALLBACK_TOKEN", "his-callback-secret")
    conf = write_conf(tmp_path, platform.base_url)
    channel_file = conf / "channels" / f"{CHANNEL}.yaml"
    channel = yaml.safe_load(channel_file.read_text())
    channel["destinations"][0]["config"].update(
        callback_url=receiver.notify_url, callback_token={"$env": "EINVOICE_TEST_CALLBACK_TOKEN"})
    channel_file.write_text(yaml.safe_dump(channel, allow_unicode=True))
    platform.simulator.inject(Fault("bad_signature", method="invoiceEBillOutpatient"))
    async with running_daemon(conf) as daemon:
        failed_id = (await post_invoice(client, daemon, outpatient("MZ-FAIL"))).json()["message_id"]
        failed, auth = await asyncio.wait_for(receiver.received.get(), CALLBACK_WAIT_SECONDS)
        issued_id = (await post_invoice(client, daemon, outpatient("MZ-OK"))).json()["message_id"]
        issued, _ = await asyncio.wait_for(receiver.received.get(), CALLBACK_WAIT_SECONDS)
    assert auth == "Bearer his-callback-secret"
    assert (failed["message_id"], failed["status"], failed["party"]) == (failed_id, "dead", "third_party")
    assert (issued["message_id"], issued["status"]) == (issued_id, "sent")
    assert issued["billNo"] == platform.simulator.state.bills["MZ-OK"].bill_no


async def test_a_callback_channel_delivers_through_the_outbox(
    tmp_path: Path, platform: PlatformServer, receiver: HisReceiver, client: httpx.AsyncClient
) -> None:
    conf = write_conf(tmp_path, platform.base_url)
    channel_file = conf / "channels" / f"{CHANNEL}.yaml"
    channel = yaml.safe_load(channel_file.read_text())
    channel["destinations"][0]["config"]["callback_channel"] = "his_notify"
    channel_file.write_text(yaml.safe_dump(channel, allow_unicode=True))
    notify = {"destinations": [{"name": "his_endpoint", "adapter": "http_json", "delivery": "async",
                                "outbox": {"initial_backoff": 0.05, "max_backoff": 0.3},
                                "config": {"url": receiver.notify_url, "idempotent": True}}]}
    (conf / "channels" / "his_notify.yaml").write_text(yaml.safe_dump(notify))
    async with running_daemon(conf) as daemon:
        issued_id = (await post_invoice(client, daemon, outpatient("MZ-CHANNEL"))).json()["message_id"]
        issued, _ = await asyncio.wait_for(receiver.received.get(), CALLBACK_WAIT_SECONDS)
        listed = await client.get(f"{daemon.url}/api/v1/messages", params={"channel": "his_notify"},
                                  headers=operator())
    assert (issued["message_id"], issued["status"]) == (issued_id, "sent")
    assert issued["billNo"] == platform.simulator.state.bills["MZ-CHANNEL"].bill_no
    assert [m["source"] for m in listed.json()["messages"]] == ["e_invoice.callback"]


async def test_a_callback_channel_that_does_not_exist_stops_start_up(
    tmp_path: Path, platform: PlatformServer
) -> None:
    conf = write_conf(tmp_path, platform.base_url)
    channel_file = conf / "channels" / f"{CHANNEL}.yaml"
    channel = yaml.safe_load(channel_file.read_text())
    channel["destinations"][0]["config"]["callback_channel"] = "nowhere"
    channel_file.write_text(yaml.safe_dump(channel, allow_unicode=True))
    with pytest.raises(ConfigError, match="callback_channel: no channel named 'nowhere'"):
        async with running_daemon(conf):
            pass
