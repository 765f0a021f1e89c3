"""Breakers shared through a real Redis: two boards in one test stand for two engine nodes.

Needs HISBRIDGE_TEST_REDIS_URL; every test has its own key namespace.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from structlog.testing import capture_logs

from engine.config.model import BreakerSettings, SharedBreakerState
from engine.errors import DestinationUnavailable, TransientError
from engine.resilience.breaker import BreakerBoard, DestinationBreaker
from tests.engine.resilience.redis_support import (
    TcpRelay,
    delete_namespace,
    redis_url_or_skip,
    unique_prefix,
    with_address,
)

pytestmark = pytest.mark.redis

Transition = tuple[str, str]


@dataclass
class Node:
    board: BreakerBoard
    transitions: list[Transition] = field(default_factory=list)

    @property
    def breaker(self) -> DestinationBreaker:
        return self.board.get("centre")

    @property
    def shared_healthy(self) -> bool:
        return self.board.shared is not None and self.board.shared.healthy


StartNode = Callable[..., Awaitable[Node]]


@pytest.fixture
def redis_url() -> str:
    return redis_url_or_skip()


@pytest.fixture
async def start_node(redis_url: str) -> AsyncIterator[StartNode]:
    prefix = unique_prefix()
    boards: list[BreakerBoard] = []

    async def start(
        *, url: str = redis_url, fail_max: int = 3, reset_timeout: float = 0.2, lease: float = 5.0,
        reconnect: float = 0.05, timeout: float = 0.5,
    ) -> Node:
        transitions: list[Transition] = []

        async def record(name: str, old: str, new: str, reason: str) -> None:
            transitions.append((old, new))

        board = BreakerBoard(
            {"centre": BreakerSettings(fail_max=fail_max, reset_timeout=reset_timeout)}, on_transition=record
        )
        boards.append(board)
        settings = SharedBreakerState(
            url=url, key_prefix=prefix, probe_lease_seconds=lease, resync_seconds=0.5,
            timeout_seconds=timeout, reconnect_seconds=reconnect,
        )
        await board.share(settings, url)
        return Node(board, transitions)

    yield start
    for board in boards:
        await board.aclose()
    await delete_namespace(redis_url, prefix)


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def fail(breaker: DestinationBreaker, times: int = 1) -> None:
    async def refused() -> str:
        raise TransientError("connect: refused")

    for _ in range(times):
        with pytest.raises(TransientError):
            await breaker.call(refused)


async def ok() -> str:
    return "ok"


async def refused_without_calling(breaker: DestinationBreaker) -> DestinationUnavailable:
    called = False

    async def must_not_run() -> str:
        nonlocal called
        called = True
        return "ran"

    with pytest.raises(DestinationUnavailable) as refused:
        await breaker.call(must_not_run)
    assert not called
    return refused.value


async def test_failures_counted_across_nodes_open_the_breaker_on_every_node(start_node: StartNode) -> None:
    a, b = await start_node(fail_max=3), await start_node(fail_max=3)

    await fail(a.breaker, 2)
    await fail(b.breaker, 1)

    assert b.breaker.state == "open"
    await until(lambda: a.breaker.state == "open")
    refused_a = await refused_without_calling(a.breaker)
    refused_b = await refused_without_calling(b.breaker)
    assert refused_a.since == refused_b.since is not None
    assert a.breaker.status().reason == b.breaker.status().reason == "TransientError: connect: refused"
    assert a.breaker.status().failures == b.breaker.status().failures == 3
    await a.board.flush()
    await b.board.flush()
    assert b.transitions == [("closed", "open")]
    assert a.transitions == []  # followed quietly: the transition is B's to log and store


async def test_exactly_one_probe_runs_across_nodes_and_its_success_closes_both(start_node: StartNode) -> None:
    a, b = await start_node(fail_max=1), await start_node(fail_max=1)
    await fail(a.breaker, 1)
    await until(lambda: b.breaker.state == "open")
    await until(lambda: a.breaker.available and b.breaker.available)  # the reset timeout elapsed

    ran = 0
    answer = asyncio.Event()

    async def probe() -> str:
        nonlocal ran
        ran += 1
        await answer.wait()
        return "ok"

    calls = [asyncio.create_task(node.breaker.call(probe)) for node in (a, b) for _ in range(5)]
    await until(lambda: ran == 1 and sum(call.done() for call in calls) == 9)
    answer.set()
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert results.count("ok") == 1
    assert all(isinstance(r, DestinationUnavailable) for r in results if r != "ok")
    await until(lambda: a.breaker.state == b.breaker.state == "closed")
    assert ran == 1
    prober, other = (a, b) if results.index("ok") < 5 else (b, a)
    await prober.board.flush()
    await other.board.flush()
    assert prober.transitions[-2:] == [("open", "half_open"), ("half_open", "closed")]
    assert other.transitions == ([("closed", "open")] if other is a else [])
    assert await a.breaker.call(ok) == await b.breaker.call(ok) == "ok"


async def test_a_failed_probe_opens_it_again_everywhere(start_node: StartNode) -> None:
    a, b = await start_node(fail_max=1), await start_node(fail_max=1)
    await fail(a.breaker, 1)
    await until(lambda: b.breaker.state == "open" and b.breaker.available)
    first_since = b.breaker.status().since

    await fail(b.breaker, 1)  # b's call is the probe, and it fails

    assert b.breaker.state == "open"
    await until(lambda: a.breaker.state == "open" and a.breaker.status().since != first_since)
    await refused_without_calling(a.breaker)
    await b.board.flush()
    assert b.transitions == [("open", "half_open"), ("half_open", "open")]


async def test_a_success_on_any_node_resets_the_shared_count(start_node: StartNode) -> None:
    a, b = await start_node(fail_max=3), await start_node(fail_max=3)
    await fail(a.breaker, 2)
    await until(lambda: b.breaker.status().failures == 2)

    assert await b.breaker.call(ok) == "ok"

    await until(lambda: a.breaker.status().failures == 0)
    await fail(a.breaker, 2)
    assert a.breaker.state == b.breaker.state == "closed"


async def test_a_probe_whose_node_went_silent_is_taken_over_and_its_late_outcome_ignored(
    start_node: StartNode,
) -> None:
    a, b = await start_node(fail_max=1, lease=0.5), await start_node(fail_max=1, lease=0.5)
    await fail(a.breaker, 1)
    await until(lambda: a.breaker.available)
    answer = asyncio.Event()

    async def hanging_probe() -> str:
        await answer.wait()
        raise TransientError("timeout: ReadTimeout")

    stuck = asyncio.create_task(a.breaker.call(hanging_probe))
    await until(lambda: b.breaker.state == "half_open")
    assert not b.breaker.available
    await until(lambda: b.breaker.available)  # the lease ran out

    assert await b.breaker.call(ok) == "ok"
    answer.set()
    with pytest.raises(TransientError):
        await stuck

    await until(lambda: a.breaker.state == "closed")
    assert b.breaker.state == "closed"
    await a.board.flush()
    assert a.transitions == [("closed", "open"), ("open", "half_open")]  # its late failure did not count


async def test_redis_on_a_closed_port_leaves_each_node_its_own_breaker_and_logs_once(
    start_node: StartNode, redis_url: str, unused_tcp_port: int
) -> None:
    closed = with_address(redis_url, "127.0.0.1", unused_tcp_port)
    with capture_logs() as logs:
        a = await start_node(url=closed, fail_max=2)
        assert not a.shared_healthy
        assert await a.breaker.call(ok) == "ok"
        await fail(a.breaker, 2)
        assert a.breaker.state == "open"
        await refused_without_calling(a.breaker)
        await asyncio.sleep(0.3)  # several reconnect rounds (every 0.05 s)
    await a.board.flush()
    assert a.transitions == [("closed", "open")]
    warnings = [entry for entry in logs if "unreachable" in entry["event"]]
    assert len(warnings) == 1


async def test_a_node_cut_off_from_redis_goes_local_and_rejoins_when_redis_is_back(
    start_node: StartNode, redis_url: str
) -> None:
    target = urlsplit(redis_url)
    relay = TcpRelay(target.hostname or "127.0.0.1", target.port or 6379)
    await relay.start()
    try:
        with capture_logs() as logs:
            a = await start_node(url=with_address(redis_url, "127.0.0.1", relay.port), fail_max=2)
            b = await start_node(fail_max=2)
            assert a.shared_healthy and b.shared_healthy

            await relay.stop()
            await until(lambda: not a.shared_healthy)
            await fail(a.breaker, 2)  # counted on a alone
            assert a.breaker.state == "open"
            assert b.breaker.state == "closed" and b.breaker.status().failures == 0

            await relay.start()
            await until(lambda: a.shared_healthy)
            # a opened while away: the shared breaker opens too, so b learns of it
            await until(lambda: b.breaker.state == "open")
            await refused_without_calling(b.breaker)
        events = [entry["event"] for entry in logs if "shared breaker state" in entry["event"]]
        assert sum("unreachable" in event for event in events) == 1
        assert sum("reachable again" in event for event in events) == 1
    finally:
        await relay.stop()


async def test_a_node_cut_off_while_the_cluster_was_open_follows_the_close_it_missed(
    start_node: StartNode, redis_url: str
) -> None:
    target = urlsplit(redis_url)
    relay = TcpRelay(target.hostname or "127.0.0.1", target.port or 6379)
    await relay.start()
    try:
        a = await start_node(url=with_address(redis_url, "127.0.0.1", relay.port), fail_max=1)
        b = await start_node(fail_max=1)
        await fail(b.breaker, 1)
        await until(lambda: a.breaker.state == "open")

        await relay.stop()
        await until(lambda: not a.shared_healthy)
        await until(lambda: b.breaker.available)
        assert await b.breaker.call(ok) == "ok"  # b's probe closes the shared breaker
        assert b.breaker.state == "closed"

        await relay.start()
        await until(lambda: a.shared_healthy)
        # a's open state was the cluster's, not its own: it follows the close instead of
        # opening the shared breaker again
        assert a.breaker.state == "closed"
        assert await a.breaker.call(ok) == "ok"
        assert b.board.shared is not None
        reread = await b.board.shared.read("centre")
        assert reread.state == "closed"
        await a.board.flush()
        assert a.transitions == []
    finally:
        await relay.stop()


async def test_a_redis_that_stops_answering_costs_one_timeout_then_the_node_goes_local(
    start_node: StartNode, redis_url: str
) -> None:
    target = urlsplit(redis_url)
    relay = TcpRelay(target.hostname or "127.0.0.1", target.port or 6379)
    await relay.start()
    try:
        a = await start_node(url=with_address(redis_url, "127.0.0.1", relay.port), fail_max=2, timeout=0.2)
        assert a.shared_healthy

        relay.pause()  # connections stay open, nothing comes back
        await fail(a.breaker, 1)  # its report times out: counted locally instead
        assert not a.shared_healthy
        await fail(a.breaker, 1)
        assert a.breaker.state == "open"
        await a.board.flush()
        assert a.transitions == [("closed", "open")]

        relay.resume()
        await until(lambda: a.shared_healthy)
        assert a.board.shared is not None
        assert (await a.board.shared.read("centre")).state == "open"  # its own open, now shared
    finally:
        await relay.stop()
