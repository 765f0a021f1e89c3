"""The engine's promises over real sockets: a real daemon, a real upstream that fails."""

from __future__ import annotations

import asyncio
import json

import httpx

from engine.daemon import Daemon
from engine.demo.upstream import Upstream
from tests.e2e.harness import his, operator, running_daemon, write_conf


async def post(client: httpx.AsyncClient, daemon: Daemon, channel: str, body: object) -> httpx.Response:
    return await client.post(f"{daemon.url}/api/v1/channels/{channel}", json=body, headers=his())


async def wait_until(condition, seconds: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_sync_call_keeps_every_stage(daemon: Daemon, upstream: Upstream, client: httpx.AsyncClient) -> None:
    response = await post(client, daemon, "settle", {"settlement_id": "S1", "amount": "12.50"})

    assert response.status_code == 200
    assert response.json()["echo"] == {"settlement_id": "S1", "amount": "12.50"}
    message_id = response.headers["x-hisbridge-message-id"]
    view = await daemon.engine.store.get_message(message_id, with_stages=True)
    assert view is not None and view.status == "replied"
    names = [stage["name"] for stage in view.stages]
    assert names[:1] == ["raw"]
    assert {"transformed", "sent", "response_raw", "response_transformed"} <= set(names)
    sent = next(stage for stage in view.stages if stage["name"] == "sent")
    assert json.loads(sent["body"]) == {"settlement_id": "S1", "amount": "12.50"}
    assert sent["headers"]["content-type"].startswith("application/json")


async def test_breaker_opens_answers_at_once_and_closes_after_probe(
    daemon: Daemon, upstream: Upstream, client: httpx.AsyncClient
) -> None:
    await upstream.stop()
    refused = [await post(client, daemon, "settle", {"n": n}) for n in range(3)]
    assert [r.status_code for r in refused] == [502, 502, 502]
    assert {r.json()["error"]["party"] for r in refused} == {"network"}

    short = await post(client, daemon, "settle", {"n": 3})
    assert short.status_code == 503
    error = short.json()["error"]
    assert error["destination"] == "centre" and error["state"] == "open"
    assert error["message_id"] and error["since"]
    view = await daemon.engine.store.get_message(error["message_id"])
    assert view is not None and view.status == "short_circuited"

    await upstream.start()
    await asyncio.sleep(1.1)  # the configured reset timeout is 1 s
    probe = await post(client, daemon, "settle", {"n": 4})
    assert probe.status_code == 200
    assert {b.name: b.state for b in daemon.engine.breakers.states()}["centre"] == "closed"


async def test_open_breaker_never_reaches_a_slow_upstream(
    tmp_path, upstream: Upstream, client: httpx.AsyncClient
) -> None:
    conf = write_conf(tmp_path, upstream.url, reset_timeout=60)  # no probe during the test
    async with running_daemon(conf) as daemon:
        upstream.set_mode("slow", delay=5)  # longer than the adapter's 2 s timeout
        for n in range(3):
            assert (await post(client, daemon, "settle", {"n": n})).status_code == 504
        seen = upstream.count

        answers = [await post(client, daemon, "settle", {"n": n}) for n in range(10)]

    assert {a.status_code for a in answers} == {503}
    assert upstream.count == seen


async def test_async_messages_queue_while_down_and_drain_once(
    daemon: Daemon, upstream: Upstream, client: httpx.AsyncClient
) -> None:
    await upstream.stop()
    accepted = [await post(client, daemon, "upload", {"upload_no": f"U{n:03d}"}) for n in range(20)]
    assert {a.status_code for a in accepted} == {202}
    ids = [a.json()["message_id"] for a in accepted]

    await upstream.start()
    await wait_until(lambda: len(upstream.accepted_bodies()) >= 20, 15)
    await asyncio.sleep(0.3)  # nothing more may arrive

    delivered = sorted(json.loads(body)["upload_no"] for body in upstream.accepted_bodies())
    assert delivered == [f"U{n:03d}" for n in range(20)]
    for message_id in ids:
        view = await daemon.engine.store.get_message(message_id)
        assert view is not None and view.status == "sent"


async def test_operator_suspension_survives_a_restart(conf, upstream: Upstream, client: httpx.AsyncClient) -> None:
    async with running_daemon(conf) as daemon:
        response = await client.post(
            f"{daemon.url}/api/v1/breakers/centre/suspend", json={"reason": "centre maintenance"},
            headers=operator(),
        )
        assert response.status_code == 200

    async with running_daemon(conf) as daemon:
        refused = await post(client, daemon, "settle", {"n": 1})
        assert refused.status_code == 503
        assert refused.json()["error"]["state"] == "suspended"
        assert "centre maintenance" in refused.json()["error"]["reason"]
        assert upstream.count == 0
        resumed = await client.post(f"{daemon.url}/api/v1/breakers/centre/resume", headers=operator())
        assert resumed.status_code == 200
        assert (await post(client, daemon, "settle", {"n": 2})).status_code == 200


async def test_bad_input_is_answered_clearly_and_stored_against_his(
    daemon: Daemon, upstream: Upstream, client: httpx.AsyncClient
) -> None:
    malformed = await client.post(
        f"{daemon.url}/api/v1/channels/settle", content=b'{"settlement_id": ', headers={
            **his(), "content-type": "application/json"},
    )
    assert malformed.status_code == 400
    error = malformed.json()["error"]
    assert error["party"] == "his" and "JSON" in error["reason"]
    view = await daemon.engine.store.get_message(error["message_id"])
    assert view is not None and view.party == "his" and view.status == "failed"

    mislabelled = await client.post(
        f"{daemon.url}/api/v1/channels/settle", content=b"{bad", headers={
            **his(), "content-type": "application/x-www-form-urlencoded"},
    )
    assert mislabelled.status_code == 400 and mislabelled.json()["error"]["party"] == "his"

    unknown = await post(client, daemon, "nope", {})
    assert unknown.status_code == 404 and "settle" in unknown.text

    oversized = await post(client, daemon, "settle", {"blob": "x" * 5000})
    assert oversized.status_code == 413
    assert upstream.count == 0


async def test_backlog_drains_as_soon_as_the_breaker_closes(
    tmp_path, upstream: Upstream, client: httpx.AsyncClient
) -> None:
    conf = write_conf(tmp_path, upstream.url)
    channel = conf / "channels" / "upload.yaml"
    channel.write_text(channel.read_text().replace("initial_backoff: 0.1", "initial_backoff: 60")
                       .replace("max_backoff: 0.5", "max_backoff: 600"))
    async with running_daemon(conf) as daemon:
        upstream.set_mode("fail")  # 503s: transient, each failed delivery backs off a minute
        for n in range(6):
            await post(client, daemon, "upload", {"upload_no": f"B{n}"})
        await wait_until(lambda: upstream.count >= 3)
        await wait_until(lambda: daemon.engine.breakers.get("platform").state == "open")

        upstream.set_mode("normal")
        await wait_until(lambda: len(upstream.accepted_bodies()) == 6, 20)  # backoff alone would take 60 s
