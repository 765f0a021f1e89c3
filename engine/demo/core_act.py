"""The demo's first act: the engine beside a simulated upstream, through an outage and back.

Drives a sync channel (HIS waits: a settlement-like call) and an async channel
(store-and-forward: an upload), takes the upstream down and brings it back, and prints
what happened.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from engine.demo.acts import DemoAct, DemoStage
from engine.demo.upstream import Upstream

SYNC_CHANNEL = "demo_settle"
ASYNC_CHANNEL = "demo_upload"


@dataclass
class Tally:
    seconds: dict[int, list[float]] = field(default_factory=dict)
    message_ids: list[str] = field(default_factory=list)

    def add(self, status: int, seconds: float, message_id: str | None) -> None:
        self.seconds.setdefault(status, []).append(seconds)
        if message_id:
            self.message_ids.append(message_id)

    def count(self, status: int) -> int:
        return len(self.seconds.get(status, []))

    def describe(self) -> str:
        return ", ".join(
            f"{len(times)}× HTTP {code} (slowest {max(times) * 1000:.1f} ms)"
            for code, times in sorted(self.seconds.items())
        )


class DemoClient:
    def __init__(self, stage: DemoStage) -> None:
        self.stage = stage

    async def post(self, channel: str, body: dict[str, Any], tally: Tally) -> httpx.Response:
        started = time.perf_counter()
        response = await self.stage.post(f"/api/v1/channels/{channel}", body)
        message_id = response.headers.get("x-hisbridge-message-id") or _json(response).get("message_id") \
            or _json(response).get("error", {}).get("message_id")
        tally.add(response.status_code, time.perf_counter() - started, message_id)
        return response

    async def burst(self, channel: str, count: int, make: Callable[[int], dict[str, Any]]) -> Tally:
        tally = Tally()
        for n in range(count):
            await self.post(channel, make(n), tally)
        return tally


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def settlement(n: int) -> dict[str, Any]:
    return {"type": "settle", "settlement_id": f"DEMO-S{n:04d}", "amount": f"{12.5 + n:.2f}", "psn_name": "测试患者"}


def upload(n: int) -> dict[str, Any]:
    return {"type": "upload", "upload_no": f"DEMO-U{n:04d}", "items": [{"code": f"TC{n:03d}", "qty": 1}]}


class OutageAct(DemoAct):
    """A settlement-like sync channel and an upload-like async channel through an outage."""

    name = "core"
    title = "The engine beside a simulated upstream, through an outage and back"

    async def run(self, stage: DemoStage) -> bool:
        host, port = stage.peer_address(SYNC_CHANNEL)
        upstream = Upstream(host=host, port=port)
        await upstream.start()
        try:
            return await _outage(stage, upstream)
        finally:
            await upstream.aclose()


async def _outage(stage: DemoStage, upstream: Upstream) -> bool:
    """Returns True when every accepted async message reached the upstream once."""
    say, wait_for = stage.say, stage.wait_for
    engine = stage.daemon.engine
    upload_dest = engine.channel(ASYNC_CHANNEL).destinations[0]
    settle_dest = engine.channel(SYNC_CHANNEL).destinations[0]
    client = DemoClient(stage)
    say(f"engine API {stage.daemon.url}; upstream {upstream.url}")

    say("\n1. Upstream healthy")
    settled = await client.burst(SYNC_CHANNEL, 10, settlement)
    queued = await client.burst(ASYNC_CHANNEL, 10, upload)
    say(f"   sync  {SYNC_CHANNEL}: {settled.describe()}")
    say(f"   async {ASYNC_CHANNEL}: {queued.describe()}")
    await wait_for(lambda: _delivered(upstream, "/upload") >= 10, 10)

    say("\n2. Upstream goes down")
    await upstream.stop()
    outage_sync = await client.burst(SYNC_CHANNEL, 10, lambda n: settlement(100 + n))
    outage_async = await client.burst(ASYNC_CHANNEL, 10, lambda n: upload(100 + n))
    say(f"   sync  {SYNC_CHANNEL}: {outage_sync.describe()}")
    say(f"         {outage_sync.count(502)} calls found the upstream refusing connections (502, party "
        f"network); after {settle_dest.config.breaker.fail_max} the breaker opened and "
        f"{outage_sync.count(503)} calls got 503 at once")
    state = {b.name: b.state for b in engine.breakers.states()}
    say(f"   breakers: {state}")
    say(f"   async {ASYNC_CHANNEL}: {outage_async.describe()}: accepted and queued in the outbox")
    depth = (await engine.store.queue_depths()).get(upload_dest.name, (0, 0.0))[0]
    say(f"   outbox depth for {upload_dest.name}: {depth}")

    say("\n3. Upstream comes back")
    await upstream.start()
    reset = max(upload_dest.config.breaker.reset_timeout, settle_dest.config.breaker.reset_timeout)
    say(f"   waiting for the breakers' half-open probe (reset timeout {reset:.0f}s) and the outbox to drain")
    drained = await wait_for(lambda: _delivered(upstream, "/upload") >= 20, reset + 30)
    after = await client.burst(SYNC_CHANNEL, 5, lambda n: settlement(200 + n))
    say(f"   sync  {SYNC_CHANNEL} after recovery: {after.describe()}")
    uploads = _delivered(upstream, "/upload")
    unique = len({r.body for r in upstream.received if r.path == "/upload" and r.status == 200})
    say(f"   async {ASYNC_CHANNEL}: 20 accepted, {uploads} delivered, {unique} distinct, "
        f"{'nothing lost' if drained and unique == 20 else 'NOT all delivered'}")

    sample = outage_async.message_ids[0] if outage_async.message_ids else None
    failed = next(iter(outage_sync.message_ids), None)
    say("\nExplain any message:")
    if sample:
        say(f"   hisbridge show {sample}      # every stage and attempt of a queued-then-drained upload")
        say(f"   hisbridge diff {sample}      # raw vs transformed, field by field")
    if failed:
        say(f"   hisbridge show {failed}      # a sync call refused during the outage, with its verdict")
    say("   hisbridge messages --channel demo_settle --status short_circuited")
    say("   hisbridge stats")
    return drained and unique == 20


def _delivered(upstream: Upstream, path: str) -> int:
    return sum(1 for r in upstream.received if r.path == path and r.status == 200)
