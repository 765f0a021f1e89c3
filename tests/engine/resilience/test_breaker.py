"""The destination breaker under asyncio, driven by a fake clock (no real waiting)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from engine.config.model import BreakerSettings
from engine.errors import (
    DestinationUnavailable,
    InputError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
)
from engine.resilience.breaker import BreakerBoard, DestinationBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_breaker(clock: FakeClock, **settings: object) -> DestinationBreaker:
    return DestinationBreaker("yibao", BreakerSettings(**settings), clock=clock)  # type: ignore[arg-type]


async def ok() -> str:
    return "ok"


def failing(error: Exception):  # type: ignore[no-untyped-def]
    async def call() -> str:
        raise error

    return call


async def trip(breaker: DestinationBreaker, times: int, text: str = "connect: refused") -> None:
    for _ in range(times):
        with pytest.raises(TransientError):
            await breaker.call(failing(TransientError(text)))


async def test_closed_breaker_passes_results_through(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    assert await breaker.call(ok) == "ok"
    assert breaker.state == "closed"


async def test_fail_max_consecutive_transient_failures_open_it(clock: FakeClock) -> None:
    breaker = make_breaker(clock, fail_max=3)
    await trip(breaker, 2)
    assert breaker.state == "closed"
    await trip(breaker, 1, "timeout: ReadTimeout")
    assert breaker.state == "open"

    called = False

    async def must_not_run() -> str:
        nonlocal called
        called = True
        return "ran"

    with pytest.raises(DestinationUnavailable) as refused:
        await breaker.call(must_not_run)
    assert not called
    error = refused.value
    assert (error.destination, error.state) == ("yibao", "open")
    assert "timeout: ReadTimeout" in error.reason
    assert isinstance(error.since, datetime) and error.since.tzinfo is not None


async def test_outcome_unknown_counts_as_failure_and_the_caller_gets_its_own_error(
    clock: FakeClock,
) -> None:
    breaker = make_breaker(clock, fail_max=1)
    original = OutcomeUnknownError("timeout")
    with pytest.raises(OutcomeUnknownError) as raised:
        await breaker.call(failing(original))
    assert raised.value is original and raised.value.__cause__ is None
    assert breaker.state == "open"
    assert breaker.status().reason == "OutcomeUnknownError: timeout"


async def test_permanent_error_is_an_answer_and_resets_the_count(clock: FakeClock) -> None:
    breaker = make_breaker(clock, fail_max=2)
    await trip(breaker, 1)
    with pytest.raises(PermanentError):
        await breaker.call(failing(PermanentError("HTTP 400")))
    await trip(breaker, 1)
    assert breaker.state == "closed"
    assert breaker.status().failures == 1


async def test_input_errors_and_engine_bugs_are_neither_failure_nor_success(clock: FakeClock) -> None:
    breaker = make_breaker(clock, fail_max=2)
    await trip(breaker, 1)
    with pytest.raises(InputError):
        await breaker.call(failing(InputError("bad id", field="psn_no")))
    with pytest.raises(KeyError):
        await breaker.call(failing(KeyError("bug")))
    assert breaker.status().failures == 1
    await trip(breaker, 1)
    assert breaker.state == "open"


async def test_exactly_one_probe_after_reset_timeout(clock: FakeClock) -> None:
    breaker = make_breaker(clock, fail_max=1, reset_timeout=30)
    await trip(breaker, 1)
    clock.advance(29.9)
    with pytest.raises(DestinationUnavailable):
        await breaker.call(ok)
    clock.advance(0.1)

    release = asyncio.Event()
    probes = 0

    async def probe() -> str:
        nonlocal probes
        probes += 1
        await release.wait()
        return "probed"

    calls = [asyncio.create_task(breaker.call(probe)) for _ in range(5)]
    await asyncio.sleep(0)
    assert probes == 1
    refused = [t for t in calls if t.done()]
    assert len(refused) == 4
    for task in refused:
        assert isinstance(task.exception(), DestinationUnavailable)
        assert task.exception().state == "half_open"  # type: ignore[union-attr]
    assert breaker.state == "half_open" and not breaker.available
    with pytest.raises(DestinationUnavailable):
        breaker.check()

    release.set()
    assert await asyncio.gather(*[t for t in calls if t not in refused]) == ["probed"]
    assert breaker.state == "closed" and breaker.available
    assert await breaker.call(ok) == "ok"


async def test_failed_probe_opens_again_with_its_reason(clock: FakeClock) -> None:
    breaker = make_breaker(clock, fail_max=1, reset_timeout=5)
    await trip(breaker, 1, "connect: refused")
    first_since = breaker.status().since
    clock.advance(5)
    with pytest.raises(TransientError):
        await breaker.call(failing(TransientError("http_status: HTTP 503")))
    status = breaker.status()
    assert status.state == "open"
    assert "HTTP 503" in status.reason
    assert status.since is not None and first_since is not None and status.since >= first_since
    with pytest.raises(DestinationUnavailable):
        await breaker.call(ok)


async def test_check_does_not_consume_the_probe(clock: FakeClock) -> None:
    breaker = make_breaker(clock, fail_max=1, reset_timeout=5)
    await trip(breaker, 1)
    assert not breaker.available
    with pytest.raises(DestinationUnavailable):
        breaker.check()
    clock.advance(5)
    breaker.check()
    breaker.check()
    assert breaker.available and breaker.state == "open"
    assert await breaker.call(ok) == "ok"
    assert breaker.state == "closed"


async def test_cancelled_probe_frees_the_slot(clock: FakeClock) -> None:
    breaker = make_breaker(clock, fail_max=1, reset_timeout=5)
    await trip(breaker, 1)
    clock.advance(5)
    hang = asyncio.Event()

    async def stuck() -> str:
        await hang.wait()
        return "never"

    probe = asyncio.create_task(breaker.call(stuck))
    await asyncio.sleep(0)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert breaker.state == "half_open" and breaker.available
    assert await breaker.call(ok) == "ok"
    assert breaker.state == "closed"


async def test_slow_calls_count_as_failures(clock: FakeClock) -> None:
    breaker = make_breaker(clock, fail_max=2, slow_call_seconds=2.0)

    async def slow() -> str:
        clock.advance(2.5)
        return "late"

    assert await breaker.call(slow) == "late"  # the caller still gets its answer
    assert breaker.status().failures == 1
    assert await breaker.call(slow) == "late"
    status = breaker.status()
    assert status.state == "open"
    assert "2.500s" in status.reason


async def test_late_outcome_of_an_earlier_generation_is_ignored(clock: FakeClock) -> None:
    breaker = make_breaker(clock, fail_max=1, reset_timeout=5)
    release = asyncio.Event()

    async def slow_failure() -> str:
        await release.wait()
        raise TransientError("timeout: late")

    early = asyncio.create_task(breaker.call(slow_failure))
    await asyncio.sleep(0)
    await trip(breaker, 1)  # opens while `early` is in flight
    clock.advance(5)
    assert await breaker.call(ok) == "ok"  # probe closes it
    release.set()
    with pytest.raises(TransientError):
        await early
    assert breaker.state == "closed"
    assert breaker.status().failures == 0


async def test_suspension_refuses_calls_whatever_the_counts(clock: FakeClock) -> None:
    breaker = make_breaker(clock)
    breaker.suspend("centre maintenance until 06:00", by="operator:li")
    assert breaker.state == "suspended" and not breaker.available
    with pytest.raises(DestinationUnavailable) as refused:
        await breaker.call(ok)
    assert refused.value.state == "suspended"
    assert refused.value.reason == "centre maintenance until 06:00"
    status = breaker.status()
    assert status.suspended_by == "operator:li"
    breaker.resume()
    assert breaker.state == "closed"
    assert await breaker.call(ok) == "ok"


async def test_board_reports_every_transition_without_blocking_calls(clock: FakeClock) -> None:
    seen: list[tuple[str, str, str, str]] = []
    gate = asyncio.Event()

    async def record(name: str, old: str, new: str, reason: str) -> None:
        await gate.wait()  # a slow store must not delay the caller
        seen.append((name, old, new, reason))

    board = BreakerBoard(
        {"yibao": BreakerSettings(fail_max=1, reset_timeout=5), "lis": BreakerSettings()},
        on_transition=record,
        clock=clock,
    )
    breaker = board.get("yibao")
    await trip(breaker, 1, "connect: refused")
    clock.advance(5)
    assert await breaker.call(ok) == "ok"
    board.suspend("lis", "analyser swap", "operator:wang")
    board.resume("lis")
    assert seen == []
    gate.set()
    await board.flush()
    assert [(n, o, w) for n, o, w, _ in seen] == [
        ("yibao", "closed", "open"),
        ("yibao", "open", "half_open"),
        ("yibao", "half_open", "closed"),
        ("lis", "closed", "suspended"),
        ("lis", "suspended", "closed"),
    ]
    assert "connect: refused" in seen[0][3]
    assert "operator:wang" in seen[3][3]


async def test_board_survives_a_failing_callback(clock: FakeClock) -> None:
    async def broken(name: str, old: str, new: str, reason: str) -> None:
        raise RuntimeError("store down")

    board = BreakerBoard({"yibao": BreakerSettings(fail_max=1)}, on_transition=broken, clock=clock)
    await trip(board.get("yibao"), 1)
    await board.flush()
    assert board.get("yibao").state == "open"


def test_board_states_and_unknown_names() -> None:
    board = BreakerBoard({"yibao": BreakerSettings(), "lis": BreakerSettings()})
    assert [(s.name, s.state) for s in board.states()] == [("lis", "closed"), ("yibao", "closed")]
    with pytest.raises(KeyError, match="known breakers: lis, yibao"):
        board.get("pacs")
    with pytest.raises(KeyError, match="'pacs'"):
        board.suspend("pacs", "x", "y")


async def test_persisted_suspensions_are_applied_silently() -> None:
    seen: list[str] = []

    async def record(name: str, old: str, new: str, reason: str) -> None:
        seen.append(new)

    since = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    board = BreakerBoard({"yibao": BreakerSettings()}, on_transition=record)
    board.apply_suspensions(
        {
            "yibao": {"reason": "maintenance", "suspended_by": "operator:li", "since": since},
            "removed_destination": {"reason": "old", "suspended_by": "x", "since": since},
        }
    )
    await board.flush()
    assert seen == []
    (status,) = board.states()
    assert (status.state, status.reason, status.suspended_by, status.since) == (
        "suspended",
        "maintenance",
        "operator:li",
        since,
    )
