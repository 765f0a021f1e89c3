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

With `breakers.shared_state` the board shares every breaker through Redis
(engine.resilience.shared_state): outcomes and probes are decided there, and the local
pybreaker follows the shared state, so the admission check stays a local read. A
transition is announced (logged, reported to `on_transition`) only by the node that made
it; the others follow quietly. While Redis is away the local state machine decides alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, TypeVar

import pybreaker
import structlog

from engine.config.model import BreakerSettings, SharedBreakerState
from engine.errors import DestinationUnavailable, PermanentError, TransientError
from engine.resilience.shared_state import (
    AdmissionKey,
    SharedBreakerStates,
    SharedStateUnavailable,
    SharedView,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half_open", "suspended"]
TransitionCallback = Callable[[str, str, str, str], Awaitable[None]]

_STATE_NAMES: dict[str, BreakerState] = {
    pybreaker.STATE_CLOSED: "closed",
    pybreaker.STATE_OPEN: "open",
    pybreaker.STATE_HALF_OPEN: "half_open",
}
_PYBREAKER_STATES = {name: state for state, name in _STATE_NAMES.items()}


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


@dataclass(frozen=True)
class _Admission:
    """What a call was let through under: its outcome counts only while that still holds."""

    probe: bool
    generation: int
    shared: AdmissionKey | None


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
        on_followed: Callable[[str, str, str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.settings = settings
        self._on_transition = on_transition
        self._on_followed = on_followed
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
        self._shared: SharedBreakerStates | None = None
        self._view: SharedView | None = None
        self._remote_probe_until = 0.0
        self._following: bool | None = None  # while adopting the shared state: made here?
        self._opened_alone = False  # by this node's own state machine while Redis was away

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
            return not self._probing and (
                self._sharing() is None or self._clock() >= self._remote_probe_until
            )
        return self._reset_elapsed()

    def check(self) -> None:
        """Raise `DestinationUnavailable` when a call would be refused; consumes nothing."""
        if not self.available:
            raise self._unavailable()

    def status(self) -> BreakerStatus:
        suspension = self._suspension
        shared = self._view if self._sharing() is not None else None
        return BreakerStatus(
            name=self.name,
            state=self.state,
            since=suspension.since if suspension else self._since,
            reason=suspension.reason if suspension else self._reason,
            failures=self._breaker.fail_counter if shared is None else shared.failures,
            suspended_by=suspension.suspended_by if suspension else None,
        )

    # -- calling -----------------------------------------------------------------------

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await `fn()` if the breaker lets it through and count its outcome."""
        admission = await self._admission()
        started = self._clock()
        try:
            result = await fn()
        except TransientError as exc:
            await self._report(admission, failure=describe_failure(exc))
            raise
        except PermanentError:
            await self._report(admission, failure=None)
            raise
        except BaseException:
            if admission.probe and admission.shared is not None and self._shared is not None:
                self._shared.release_later(self)
            raise
        finally:
            if admission.probe:
                self._probing = False
        elapsed = self._clock() - started
        slow_limit = self.settings.slow_call_seconds
        if slow_limit is not None and elapsed > slow_limit:
            await self._report(admission, failure=f"slow call: {elapsed:.3f}s > {slow_limit}s")
        else:
            await self._report(admission, failure=None)
        return result

    async def _admission(self) -> _Admission:
        shared = self._sharing()
        if shared is None or self._view is None:
            return _Admission(self._admit(), self._generation, None)
        if self._suspension is None and self._breaker.current_state == pybreaker.STATE_CLOSED:
            return _Admission(False, self._generation, self._view.key)
        if not self.available:
            raise self._unavailable()
        self._probing = True  # one caller per node asks the cluster for the probe
        try:
            view = await shared.probe(self.name, self.settings.reset_timeout)
        except SharedStateUnavailable:
            self._probing = False
            return _Admission(self._admit(), self._generation, None)
        except BaseException:
            self._probing = False
            shared.release_later(self)  # in case the lease was taken before the cancel
            raise
        self.follow(view)
        if view.verdict == "probe":
            return _Admission(True, self._generation, view.key)
        self._probing = False
        if view.verdict == "closed":
            return _Admission(False, self._generation, view.key)
        raise self._unavailable()

    async def _report(self, admission: _Admission, *, failure: str | None) -> None:
        """Count an outcome in the shared state when the call was admitted under it, else
        (or when Redis fails now) in the local state machine."""
        shared = self._sharing()
        if shared is not None and admission.shared is not None:
            view = self._view
            if failure is None and not admission.probe and (view is None or view.failures == 0):
                return  # nothing to reset: a success costs no round trip
            try:
                if failure is not None:
                    reply = await shared.failure(
                        self.name, admission.shared, self.settings.fail_max, failure
                    )
                else:
                    reply = await shared.success(self.name, admission.shared)
            except SharedStateUnavailable:
                pass
            else:
                self.follow(reply)
                return
        self._record(admission.generation, failure=failure)

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

    # -- shared state ----------------------------------------------------------------------

    def share(self, shared: SharedBreakerStates) -> None:
        """Follow (and decide through) the shared state from now on."""
        self._shared = shared

    def _sharing(self) -> SharedBreakerStates | None:
        shared = self._shared
        return shared if shared is not None and shared.healthy else None

    def follow(self, view: SharedView) -> None:
        """Adopt the shared state: from a script's answer, a published change or a re-read.

        The node named in the view made the transition and announces it; the others move
        their pybreaker quietly. Timing and reasons come from the shared state, so every
        node tells HIS the same "since" and counts the reset timeout from the same moment.
        """
        if not view.replaces(self._view):
            return
        shared = self._shared
        made_here = shared is not None and view.node == shared.node and view.advances(self._view)
        self._view = view
        self._opened_alone = False
        held_elsewhere = view.probe_node and (shared is None or view.probe_node != shared.node)
        self._remote_probe_until = self._clock() + view.probe_ttl_ms / 1000 if held_elsewhere else 0.0
        target = _PYBREAKER_STATES[view.state]
        if target != self._breaker.current_state:
            self._last_failure = view.reason
            self._following = made_here
            try:
                {
                    pybreaker.STATE_OPEN: self._breaker.open,
                    pybreaker.STATE_HALF_OPEN: self._breaker.half_open,
                    pybreaker.STATE_CLOSED: self._breaker.close,
                }[target]()
            finally:
                self._following = None
        if view.state == "open":
            self._opened_at = self._clock() - max(0, view.now_ms - view.opened_ms) / 1000
        if view.since_ms:
            self._since = datetime.fromtimestamp(view.since_ms / 1000, UTC)
        if view.state != "half_open" and view.reason:
            self._reason = view.reason

    def opened_locally(self) -> str | None:
        """Why this node's own state machine opened the breaker while Redis was away, or
        None (it did not, or the open state was the cluster's; see SharedFollower)."""
        if self._opened_alone and self._breaker.current_state == pybreaker.STATE_OPEN:
            return self._reason
        return None

    # -- pybreaker's transitions ---------------------------------------------------------

    def _entered(self, old: str | None, new: str) -> None:
        self._generation += 1
        self._since = datetime.now(UTC)
        if new == pybreaker.STATE_OPEN:
            self._opened_at = self._clock()
            self._reason = reason = self._last_failure
            self._opened_alone = self._following is None and self._shared is not None
        elif new == pybreaker.STATE_HALF_OPEN:
            # `_reason` keeps saying why it opened: that is what a refused caller needs
            reason = "reset timeout elapsed; one probe call let through"
        else:
            self._reason = reason = "probe call succeeded"
        old_name = _STATE_NAMES[old] if old else "closed"
        if self._following is False:
            log.debug("breaker followed the cluster", breaker=self.name, old=old_name, new=_STATE_NAMES[new])
            if self._on_followed is not None:
                self._on_followed(self.name, old_name, _STATE_NAMES[new], reason)
        elif self._suspension is None:
            self._notify(old_name, _STATE_NAMES[new], reason)

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
    """Every destination's breaker, keyed by breaker name; state is in memory, shared with
    the other engine nodes through Redis once `share()` was awaited.

    Transitions (including suspend/resume) are reported to `on_transition` as a scheduled
    task, so persisting them never delays a call. Transitions another node made and this one
    followed go to `on_followed` instead (not stored or counted again, but e.g. a close
    should still wake this node's outbox).
    """

    def __init__(
        self,
        settings: Mapping[str, BreakerSettings],
        *,
        on_transition: TransitionCallback | None = None,
        on_followed: TransitionCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._callback = on_transition
        self._on_followed = on_followed
        self._pending: set[asyncio.Task[None]] = set()
        self._shared: SharedBreakerStates | None = None
        self._breakers = {
            name: DestinationBreaker(
                name, value, on_transition=partial(self._schedule, self._callback),
                on_followed=partial(self._schedule, self._on_followed), clock=clock,
            )
            for name, value in settings.items()
        }

    async def share(self, settings: SharedBreakerState, url: str) -> None:
        """Share every breaker's state through the Redis at `url` (see shared_state). Returns
        once connected, or at once with the breakers local when Redis is down (retried)."""
        shared = SharedBreakerStates(settings, url)
        self._shared = shared
        for breaker in self._breakers.values():
            breaker.share(shared)
        await shared.start(self._breakers.values())

    @property
    def shared(self) -> SharedBreakerStates | None:
        return self._shared

    async def aclose(self) -> None:
        """Stop sharing (if shared) and wait for reported transitions."""
        if self._shared is not None:
            await self._shared.aclose()
        await self.flush()

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

    def _schedule(
        self, callback: TransitionCallback | None, name: str, old: str, new: str, reason: str
    ) -> None:
        if callback is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("breaker transition not reported: no running loop", breaker=name, new=new)
            return
        task = loop.create_task(self._report(callback, name, old, new, reason))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _report(
        self, callback: TransitionCallback, name: str, old: str, new: str, reason: str
    ) -> None:
        try:
            await callback(name, old, new, reason)
        except Exception:
            log.exception("breaker transition callback failed", breaker=name, new=new)
