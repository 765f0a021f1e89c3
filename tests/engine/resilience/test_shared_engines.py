"""Two engines (two nodes behind a load balancer) in one test, against a real local upstream:
with `breakers.shared_state` they share one breaker through Redis; without it, nothing
changes and each node keeps its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.catalogue import Catalogue
from engine.config.loader import base_dir, load_config
from engine.demo.upstream import Upstream
from engine.message import Payload, Status
from engine.plugin_manager import create_plugin_manager
from engine.runtime import Engine
from tests.engine.resilience.redis_support import delete_namespace, redis_url_or_skip, unique_prefix

StartEngine = Callable[[str], Awaitable[Engine]]


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with Upstream() as server:
        yield server


def make_start_engine(
    tmp_path: Path, upstream: Upstream, engines: list[Engine], breakers: dict[str, Any] | None
) -> StartEngine:
    async def start(node: str) -> Engine:
        conf = tmp_path / node / "conf"
        (conf / "channels").mkdir(parents=True)
        daemon: dict[str, Any] = {"store": {"url": f"sqlite:///{tmp_path / node / 'store.db'}"}}
        if breakers is not None:
            daemon["breakers"] = breakers
        (conf / "hisbridge.yaml").write_text(yaml.safe_dump(daemon))
        breaker = {"key": "centre", "fail_max": 2, "reset_timeout": 0.3}
        (conf / "channels" / "settle.yaml").write_text(yaml.safe_dump({"destinations": [{
            "name": "centre", "adapter": "http_json", "delivery": "sync", "breaker": breaker,
            "retry": {"attempts": 1}, "config": {"url": f"{upstream.url}/settle", "timeout": 5},
        }]}))
        # an async subscriber behind the same breaker, whose redelivery waits far longer
        # than any test: only a breaker closing makes it due again
        (conf / "channels" / "upload.yaml").write_text(yaml.safe_dump({"destinations": [{
            "name": "platform", "adapter": "http_json", "delivery": "async", "breaker": breaker,
            "retry": {"attempts": 1}, "outbox": {"initial_backoff": 600, "max_backoff": 600},
            "config": {"url": f"{upstream.url}/upload", "timeout": 5, "idempotent": True},
        }]}))
        pm = create_plugin_manager(load_entry_points=False)  # the core's http_json is enough
        catalogue = Catalogue.build(pm)
        engine = await Engine.start(
            load_config(conf, catalogue=catalogue), pm=pm, catalogue=catalogue, base_dir=base_dir(conf),
            run_sources=False,
        )
        engines.append(engine)
        return engine

    return start


@pytest.fixture
async def shared_engines(tmp_path: Path, upstream: Upstream) -> AsyncIterator[StartEngine]:
    url = redis_url_or_skip()
    prefix = unique_prefix()
    engines: list[Engine] = []
    yield make_start_engine(
        tmp_path, upstream, engines, {"shared_state": {"url": url, "key_prefix": prefix, "resync_seconds": 0.5}}
    )
    for engine in engines:
        await engine.stop()
    await delete_namespace(url, prefix)


@pytest.fixture
async def separate_engines(tmp_path: Path, upstream: Upstream) -> AsyncIterator[StartEngine]:
    engines: list[Engine] = []
    yield make_start_engine(tmp_path, upstream, engines, None)
    for engine in engines:
        await engine.stop()


async def settle(engine: Engine, n: int) -> str:
    outcome = await engine.call("settle", Payload.from_json({"settlement_id": f"S{n}"}), caller="test")
    return outcome.status


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def last_event(engine: Engine) -> tuple[str, str] | None:
    await engine.breakers.flush()
    event = (await engine.store.last_breaker_events()).get("centre")
    return None if event is None else (event["old_state"], event["new_state"])


def breaker_state(engine: Engine) -> str:
    return engine.breakers.get("centre").state


@pytest.mark.redis
async def test_one_nodes_failures_open_the_breaker_for_both_one_probe_closes_it_for_both(
    shared_engines: StartEngine, upstream: Upstream
) -> None:
    a, b = await shared_engines("a"), await shared_engines("b")
    upstream.set_mode("fail")

    assert [await settle(a, 1), await settle(a, 2)] == [Status.FAILED, Status.FAILED]
    await until(lambda: breaker_state(b) == "open")
    assert await settle(b, 3) == Status.SHORT_CIRCUITED
    assert await settle(a, 4) == Status.SHORT_CIRCUITED
    assert upstream.count == 2  # only a's two failures reached the centre
    assert await last_event(a) == ("closed", "open")
    assert await last_event(b) is None  # b followed; the transition is a's to store

    upstream.set_mode("slow", delay=1.0)  # the centre is back; the probe holds while the others ask
    upstream.reset()
    await until(lambda: a.breakers.get("centre").available and b.breakers.get("centre").available)
    calls = [asyncio.create_task(settle(node, 10 + i)) for i in range(4) for node in (a, b)]
    statuses = await asyncio.gather(*calls)

    assert sorted(statuses).count(Status.REPLIED) == 1
    assert statuses.count(Status.SHORT_CIRCUITED) == 7
    assert upstream.count == 1  # exactly one probe reached the upstream across both nodes
    await until(lambda: breaker_state(a) == breaker_state(b) == "closed")
    prober, follower = (a, b) if statuses.index(Status.REPLIED) % 2 == 0 else (b, a)
    assert await last_event(prober) == ("half_open", "closed")
    assert await last_event(follower) == (("closed", "open") if follower is a else None)

    upstream.set_mode("normal")
    assert [await settle(a, 20), await settle(b, 21)] == [Status.REPLIED, Status.REPLIED]


@pytest.mark.redis
async def test_a_close_made_on_another_node_drains_this_nodes_backlog(
    shared_engines: StartEngine, upstream: Upstream
) -> None:
    a, b = await shared_engines("a"), await shared_engines("b")
    upstream.set_mode("fail")
    receipt = await b.accept("upload", Payload.from_json({"upload_id": "U1"}), caller="test")
    await until(lambda: upstream.count == 1)  # b's first attempt failed: next try in 600 s
    assert await settle(a, 1) == Status.FAILED  # the second failure opens the breaker, on a
    await until(lambda: breaker_state(b) == "open")
    view = await b.store.get_message(receipt.message_id)
    assert view is not None and view.status == Status.QUEUED

    upstream.set_mode("normal")
    await until(lambda: breaker_state(a) == "open" and a.breakers.get("centre").available)
    assert await settle(a, 3) == Status.REPLIED  # a's probe closes the breaker for both

    # b followed the close quietly, yet its outbox delivers the queued upload at once
    await until(lambda: b"U1" in b"".join(upstream.accepted_bodies()))
    assert await last_event(b) is None


async def test_without_the_setting_each_node_keeps_its_own_breaker(
    separate_engines: StartEngine, upstream: Upstream
) -> None:
    a, b = await separate_engines("a"), await separate_engines("b")
    assert a.breakers.shared is None and b.breakers.shared is None
    upstream.set_mode("fail")

    assert [await settle(a, 1), await settle(a, 2)] == [Status.FAILED, Status.FAILED]
    assert breaker_state(a) == "open"
    assert breaker_state(b) == "closed"
    assert await settle(b, 3) == Status.FAILED  # b still calls the failing centre itself
    assert upstream.count == 3
    assert await last_event(b) is None
