"""Circuit breakers, one per destination, correct under asyncio.

pybreaker owns the state machine (closed → open after `fail_max` consecutive failures,
open → half-open, half-open → closed on success or back to open on failure) and its
counters. Its own async support is Tornado-only and lets every concurrent call through
while half-open, so admission is decided here, before the awaited call starts:

- open and the reset timeout not elapsed, or suspended: `DestinationUnavailable` at once,
  without touching the network (the open-breaker path does no I/O);
- open and the timeout elapsed: exactly one caller becomes the probe (half-open), every
  other caller is refused until the probe's outcome is known;
- the outcome is then replayed synchronously through pybreaker, which counts it.

A call admitted before a transition reports its outcome to a breaker that has moved on;
such late outcomes are dropped (a generation number changes on every transition), so a
slow call started while closed can neither re-open a breaker that a probe just closed
nor close one that opened meanwhile.

Only `TransientError` (including `OutcomeUnknownError`) and calls slower than
`slow_call_seconds` are failures. A `PermanentError` means the destination answered, so
it counts as a success. Anything else (bad input, engine bugs, cancellation) is neutral:
not counted, and a neutral probe just frees the probe slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import pybreaker
import structlog

from engine.config.model import BreakerSettings
from engine.errors import DestinationUnavailable, PermanentError, TransientError

log = structlog.get_logger(__name__)

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half_open", "suspended"]
TransitionCallback = Callable[[str, str, str, str], Awaitable[None]]

_STATE_NAMES: dict[str, BreakerState] = {
    pybreaker.STATE_CLOSED: "closed",
    pybreaker.STATE_OPEN: "open",
    pybreaker.STATE_HALF_OPEN: "half_open",
}


@dataclass(frozen=True)
class BreakerStatus:
    """A breaker as the console and `hisbridge breakers` show it."""

    name: str
    state: BreakerState
    since: datetime | None
    reason: str
    failures: int
    suspended_by: str | None = None


@dataclass(frozen=True)
class Suspension:
    reason: str
    suspended_by: str
    since: datetime


class _CountedFailure(TransientError):
    """Stands in for a failure when it is replayed through pybreaker, so the caller's own
    exception is never re-raised (and its traceback never touched) by the state machine."""


def describe_failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class DestinationBreaker:
    """The breaker of one destination (or of several sharing a breaker key)."""

    def __init__(
        self,
        name: str,
        settings: BreakerSettings,
        *,
        on_transition: Callable[[str, str, str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.settings = settings
        self._on_transition = on_transition
        self._clock = clock
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=settings.fail_max,
            reset_timeout=settings.reset_timeout,
            exclude=[lambda exc: not isinstance(exc, TransientError)],
            listeners=[_StateListener(self)],
            name=name,
            throw_new_error_on_trip=False,
        )
        self._generation = 0
        self._probing = False
        self._opened_at = 0.0
        self._since: datetime | None = None
        self._reason = ""
        self._last_failure = ""
        self._suspension: Suspension | None = None

    # -- reading -----------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        if self._suspension is not None:
            return "suspended"
        return _STATE_NAMES[self._breaker.current_state]

    @property
    def available(self) -> bool:
        """Whether a call now would be let through (a free probe slot counts)."""
        if self._suspension is not None:
            return False
        state = self._breaker.current_state
        if state == pybreaker.STATE_CLOSED:
            return True
        if state == pybreaker.STATE_HALF_OPEN:
            return not self._probing
        return self._reset_elapsed()

    def check(self) -> None:
        """Raise `DestinationUnavailable` when a call would be refused; consumes nothing."""
        if not self.available:
            raise self._unavailable()

    def status(self) -> BreakerStatus:
        suspension = self._suspension
        return BreakerStatus(
            name=self.name,
            state=self.state,
            since=suspension.since if suspension else self._since,
            reason=suspension.reason if suspension else self._reason,
            failures=self._breaker.fail_counter,
            suspended_by=suspension.suspended_by if suspension else None,
        )

    # -- calling -----------------------------------------------------------------------

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await `fn()` if the breaker lets it through and count its outcome."""
        is_probe = self._admit()
        generation = self._generation
        started = self._clock()
        try:
            result = await fn()
        except TransientError as exc:
            self._record(generation, failure=describe_failure(exc))
            raise
        except PermanentError:
            self._record(generation, failure=None)
            raise
        finally:
            if is_probe:
                self._probing = False
        elapsed = self._clock() - started
        slow_limit = self.settings.slow_call_seconds
        if slow_limit is not None and elapsed > slow_limit:
            self._record(generation, failure=f"slow call: {elapsed:.3f}s > {slow_limit}s")
        else:
            self._record(generation, failure=None)
        return result

    def _admit(self) -> bool:
        """Let the caller through (returning whether it is the probe) or refuse it."""
        if self._suspension is not None:
            raise self._unavailable()
        state = self._breaker.current_state
        if state == pybreaker.STATE_CLOSED:
            return False
        if state == pybreaker.STATE_OPEN and self._reset_elapsed():
            self._breaker.half_open()
            self._probing = True
            return True
        if state == pybreaker.STATE_HALF_OPEN and not self._probing:
            self._probing = True
            return True
        raise self._unavailable()

    def _record(self, generation: int, *, failure: str | None) -> None:
        """Feed one outcome to pybreaker, which counts it and moves the state."""
        if generation != self._generation:
            return

        def replay() -> None:
            if failure is not None:
                raise _CountedFailure(failure)

        try:
            self._breaker.call(replay)
        except _CountedFailure:
            pass  # counted; the caller's own error propagates untouched

    def _reset_elapsed(self) -> bool:
        return self._clock() - self._opened_at >= self.settings.reset_timeout

    def _unavailable(self) -> DestinationUnavailable:
        status = self.status()
        return DestinationUnavailable(
            self.name, state=status.state, since=status.since, reason=status.reason
        )

    # -- operator suspension -----------------------------------------------------------

    def suspend(
        self, reason: str, by: str, *, since: datetime | None = None, notify: bool = True
    ) -> None:
        """Refuse every call until `resume()`, whatever the failure counts say."""
        old = self.state
        self._suspension = Suspension(reason, by, since or datetime.now(UTC))
        if notify and old != "suspended":
            self._notify(old, "suspended", f"suspended by {by}: {reason}")

    def resume(self) -> None:
        if self._suspension is None:
            return
        by = self._suspension.suspended_by
        self._suspension = None
        self._notify("suspended", self.state, f"resumed (was suspended by {by})")

    # -- pybreaker's transitions ---------------------------------------------------------

    def _entered(self, old: str | None, new: str) -> None:
        self._generation += 1
        self._since = datetime.now(UTC)
        if new == pybreaker.STATE_OPEN:
            self._opened_at = self._clock()
            self._reason = reason = self._last_failure
        elif new == pybreaker.STATE_HALF_OPEN:
            # `_reason` keeps saying why it opened: that is what a refused caller needs
            reason = "reset timeout elapsed; one probe call let through"
        else:
            self._reason = reason = "probe call succeeded"
        if self._suspension is None:
            self._notify(_STATE_NAMES[old] if old else "closed", _STATE_NAMES[new], reason)

    def _notify(self, old: str, new: str, reason: str) -> None:
        log.info("breaker transition", breaker=self.name, old=old, new=new, reason=reason)
        if self._on_transition is not None:
            self._on_transition(self.name, old, new, reason)


class _StateListener(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: DestinationBreaker) -> None:
        self._owner = owner

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        self._owner._last_failure = str(exc)

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        self._owner._entered(old_state.name if old_state else None, new_state.name)


class BreakerBoard:
    """Every destination's breaker, keyed by breaker name; state is in memory only.

    Transitions (including suspend/resume) are reported to `on_transition` as a scheduled
    task, so persisting them never delays a call.
    """

    def __init__(
        self,
        settings: Mapping[str, BreakerSettings],
        *,
        on_transition: TransitionCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._callback = on_transition
        self._pending: set[asyncio.Task[None]] = set()
        self._breakers = {
            name: DestinationBreaker(name, value, on_transition=self._schedule, clock=clock)
            for name, value in settings.items()
        }

    def get(self, name: str) -> DestinationBreaker:
        try:
            return self._breakers[name]
        except KeyError:
            known = ", ".join(sorted(self._breakers)) or "none"
            raise KeyError(f"no breaker named {name!r}; known breakers: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._breakers

    def states(self) -> list[BreakerStatus]:
        return [self._breakers[name].status() for name in sorted(self._breakers)]

    def suspend(self, name: str, reason: str, by: str) -> None:
        self.get(name).suspend(reason, by)

    def resume(self, name: str) -> None:
        self.get(name).resume()

    def apply_suspensions(self, suspensions: Mapping[str, Mapping[str, Any]]) -> None:
        """Restore persisted suspensions at start-up: {name: {reason, suspended_by, since}}.

        Already persisted, so nothing is reported; unknown names (a destination removed
        from config) are logged and skipped rather than blocking start-up.
        """
        for name, row in suspensions.items():
            breaker = self._breakers.get(name)
            if breaker is None:
                log.warning("suspension for unknown breaker ignored", breaker=name)
                continue
            breaker.suspend(
                str(row["reason"]), str(row["suspended_by"]), since=row.get("since"), notify=False
            )

    async def flush(self) -> None:
        """Wait until every reported transition has been handled (shutdown, tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _schedule(self, name: str, old: str, new: str, reason: str) -> None:
        if self._callback is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("breaker transition not reported: no running loop", breaker=name, new=new)
            return
        task = loop.create_task(self._report(name, old, new, reason))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _report(self, name: str, old: str, new: str, reason: str) -> None:
        assert self._callback is not None
        try:
            await self._callback(name, old, new, reason)
        except Exception:
            log.exception("breaker transition callback failed", breaker=name, new=new)
