"""Immediate retries of one delivery attempt, for destinations declared safe to repeat.

Only an idempotent call is ever tried twice, and only after a `TransientError` (which
includes `OutcomeUnknownError`: repeating a call whose first try may have been acted on
is exactly what idempotent declares safe). An open breaker, a rejection or bad input
ends the attempt at once. Backoff is exponential from `initial_backoff`, plus up to
`initial_backoff` of random jitter so that many callers do not retry in step, capped at
`max_backoff`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from engine.config.model import RetrySettings
from engine.errors import TransientError

log = structlog.get_logger(__name__)

T = TypeVar("T")


async def call_with_retries(
    fn: Callable[[], Awaitable[T]], settings: RetrySettings, *, idempotent: bool
) -> T:
    """Await `fn()`, repeating it on `TransientError` up to `settings.attempts` times when
    `idempotent`; the last error propagates unchanged."""
    if not idempotent or settings.attempts == 1:
        return await fn()
    try:
        return await fn()  # the usual case, without building a retry loop for it
    except TransientError as first:
        log.info("retrying transient failure", attempt=1, error=type(first).__name__)
    await asyncio.sleep(_delay(settings, 1))
    retrying = AsyncRetrying(
        stop=stop_after_attempt(settings.attempts - 1),
        wait=_backoff(settings),
        retry=retry_if_exception_type(TransientError),
        before_sleep=_log_retry,
        reraise=True,
    )
    return await retrying(fn)


def _delay(settings: RetrySettings, failed_attempts: int) -> float:
    exponential = settings.initial_backoff * 2.0 ** (failed_attempts - 1)
    jitter = random.uniform(0, settings.initial_backoff)
    return min(settings.max_backoff, exponential + jitter)


def _backoff(settings: RetrySettings) -> Callable[[RetryCallState], float]:
    # tenacity's own jittered wait changed its parameters between 8.x and 9.x; the loop
    # starts after the first failed attempt, so its attempt 1 is the call's attempt 2
    def wait(state: RetryCallState) -> float:
        return _delay(settings, state.attempt_number + 1)

    return wait


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.info(
        "retrying transient failure",
        attempt=state.attempt_number + 1,
        error=type(error).__name__,
        wait=round(state.upcoming_sleep, 3),
    )
