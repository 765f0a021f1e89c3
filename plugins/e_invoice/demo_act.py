"""The demo's e-invoice act: invoices issued while the fiscal platform is down, each exactly once.

HIS posts outpatient invoices to `e_invoice_fiscal` (conf/channels) and gets 202 at once,
whether the platform is up or not. One answer is lost on its way back and resolved by a
busNo lookup instead of a second issue. The platform goes down, more invoices are
accepted, it comes back, the outbox drains, and the simulator's own counts show every busNo
issued exactly once; HIS learns the bill numbers by polling and through the callback
channel `e_invoice_his_notify` (a small HIS receiver the act runs).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.demo.acts import DemoAct, DemoStage
from engine.serving import LocalServer
from plugins.e_invoice.adapter import EInvoiceConfig
from plugins.e_invoice.simulator import Fault, PlatformServer, PlatformSimulator
from plugins.e_invoice.simulator.app import ISSUE_METHODS

CHANNEL = "e_invoice_fiscal"
NOTIFY_CHANNEL = "e_invoice_his_notify"
KEY_ENV = "HISBRIDGE_EINVOICE_APP_KEY"
BEFORE, DURING = 5, 10
DRAIN_SECONDS = 25.0


@dataclass
class HisReceiver:
    """HIS's side of the callback: every JSON body posted to it, in arrival order."""

    received: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        body = await request.json()
        if isinstance(body, dict):
            self.received.append(body)
        return JSONResponse({"ok": True})

    def bus_nos(self) -> set[str]:
        return {str(body.get("busNo")) for body in self.received if body.get("billNo")}


def peer(stage: DemoStage, channel: str) -> tuple[str, int]:
    """Host and port of the channel's first destination: its `url`, or `base_url` for the
    adapters that append paths to a service base."""
    config = stage.daemon.engine.channel(channel).destinations[0].adapter.config
    url = httpx.URL(str(config.model_dump().get("url") or config.model_dump()["base_url"]))
    return url.host, url.port or 80


def invoice(bus_no: str, payer: str) -> dict[str, Any]:
    now = datetime.now()
    return {"method": "outpatient", "data": {
        "busNo": bus_no, "busType": "02", "payer": payer,
        "busDateTime": f"{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}",
        "placeCode": "KPD001", "payee": "演示收费员", "author": "演示收费员", "checker": "演示收费员",
        "totalAmt": "36.80", "payerType": "1",
        "payChannelDetail": [{"payChannelCode": "11", "payChannelValue": "30.00"},
                             {"payChannelCode": "02", "payChannelValue": "6.80"}],
        "chargeDetail": [{"sortNo": 1, "chargeCode": "YLMZ03", "chargeName": "西药费", "unit": "项",
                          "std": "36.80", "number": 1, "amt": "36.80", "selfAmt": "0.00"}],
    }}


class EInvoiceAct(DemoAct):
    name = "e_invoice"
    title = "Fiscal e-invoices through a platform outage: HIS never waits, every busNo issued once"
    environment = {KEY_ENV: "demo-einvoice-app-key"}

    async def run(self, stage: DemoStage) -> bool:
        config = stage.daemon.engine.channel(CHANNEL).destinations[0].adapter.config
        assert isinstance(config, EInvoiceConfig)
        host, port = peer(stage, CHANNEL)
        simulator = PlatformSimulator(appid=config.appid, key=os.environ[KEY_ENV])
        receiver = HisReceiver()
        notify_host, notify_port = peer(stage, NOTIFY_CHANNEL)
        async with PlatformServer(simulator, host=host, port=port) as platform, \
                LocalServer(receiver.app(), host=notify_host, port=notify_port):
            return await _story(stage, platform, receiver)


async def _post_all(stage: DemoStage, calls: list[dict[str, Any]]) -> tuple[list[str], float]:
    """Post each invoice as HIS; the message ids of the 202s and the slowest answer in ms."""
    ids: list[str] = []
    slowest = 0.0
    for call in calls:
        started = time.perf_counter()
        answer = await stage.post(f"/api/v1/channels/{CHANNEL}", call)
        slowest = max(slowest, (time.perf_counter() - started) * 1000)
        if answer.status_code == 202:
            ids.append(str(answer.json()["message_id"]))
        else:
            stage.say(f"   unexpected HTTP {answer.status_code}: {answer.text[:200]}")
    return ids, slowest


async def _story(stage: DemoStage, platform: PlatformServer, receiver: HisReceiver) -> bool:
    say = stage.say
    state = platform.simulator.state
    run = datetime.now().strftime("%H%M%S")
    bus_nos = [f"DEMO{run}{n:03d}" for n in range(BEFORE + DURING)]
    calls = [invoice(bus_no, f"演示患者{n:02d}") for n, bus_no in enumerate(bus_nos)]
    notify_host, notify_port = peer(stage, NOTIFY_CHANNEL)
    say(f"fiscal platform simulator {platform.base_url}; HIS callback receiver http://{notify_host}:{notify_port}")

    say(f"\n1. Platform up: {BEFORE} invoices; the answer to the first is lost after the bill is made")
    platform.simulator.inject(Fault("drop", "invoiceEBillOutpatient"))
    first, slowest = await _post_all(stage, calls[:BEFORE])
    say(f"   HIS got {len(first)}× 202 (slowest {slowest:.1f} ms)")
    await stage.wait_for(lambda: state.issued_count >= BEFORE, DRAIN_SECONDS)
    say(f"   platform has issued {state.issued_count} bills")

    say("\n2. Platform goes down")
    await platform.stop()
    during, slowest = await _post_all(stage, calls[BEFORE:])
    say(f"   HIS got {len(during)}× 202 while it was down (slowest {slowest:.1f} ms): queued in the outbox")
    depths = await stage.daemon.engine.store.queue_depths()
    say(f"   outbox depth for e_invoice_platform: {depths.get('e_invoice_platform', (0, 0.0))[0]}")

    say("\n3. Platform comes back; the outbox drains")
    await platform.start()
    total = BEFORE + DURING
    drained = await stage.wait_for(lambda: state.issued_count >= total and len(receiver.bus_nos()) >= total,
                                   DRAIN_SECONDS)
    issue_calls = sum(1 for method in state.calls if method in ISSUE_METHODS)
    once = set(state.bills) == set(bus_nos) and state.issued_count == total
    say(f"   platform: {state.issued_count} bills for {len(state.bills)} busNos, {issue_calls} issue calls "
        f"({'every busNo issued exactly once' if once else 'NOT exactly once'})")
    lost = await stage.get(f"/api/v1/e-invoice/messages/{first[0]}") if first else None
    if lost is not None and lost.status_code == 200:
        view = lost.json()
        say(f"   the lost answer ({view.get('busNo')}): resolved by {view.get('resolved_by')}, "
            f"bill {view.get('billNo')}, no second bill")

    say("\n4. HIS learns the bill numbers")
    polled = await stage.get(f"/api/v1/e-invoice/messages/{during[0]}") if during else None
    poll_ok = polled is not None and polled.status_code == 200 and bool(polled.json().get("billNo"))
    if polled is not None and poll_ok:
        bill = polled.json()
        say(f"   GET /api/v1/e-invoice/messages/{during[0]} → {bill['status']}: "
            f"billBatchCode {bill.get('billBatchCode')} billNo {bill.get('billNo')} random {bill.get('random')}")
        say(f"      picture {bill.get('pictureUrl')}")
    called_back = receiver.bus_nos() >= set(bus_nos)
    say(f"   callbacks through {NOTIFY_CHANNEL}: {len(receiver.bus_nos())} of {total} invoices told to HIS")

    say("\nExplain any invoice:")
    if first:
        say(f"   hisbridge show {first[0]}      # issue, its lost answer, the busNo lookup")
    say(f"   hisbridge messages --channel {CHANNEL} --key bus_no={bus_nos[-1]}")
    return drained and once and poll_ok and called_back


__all__ = ["EInvoiceAct"]
