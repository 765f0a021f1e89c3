from __future__ import annotations

import pytest

from engine.config.model import RetrySettings
from engine.errors import (
    DestinationUnavailable,
    InputError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
)
from engine.resilience.retry import call_with_retries

NO_WAIT = RetrySettings(attempts=3, initial_backoff=0, max_backoff=0.01)


class Script:
    """Raises the given errors in turn, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


async def test_idempotent_call_is_retried_after_transient_errors() -> None:
    script = Script(TransientError("connect"), OutcomeUnknownError("timeout"))
    assert await call_with_retries(script, NO_WAIT, idempotent=True) == "answer"
    assert script.calls == 3


async def test_non_idempotent_call_is_tried_once() -> None:
    script = Script(TransientError("connect"))
    with pytest.raises(TransientError):
        await call_with_retries(script, NO_WAIT, idempotent=False)
    assert script.calls == 1


async def test_last_error_propagates_unchanged_when_attempts_run_out() -> None:
    last = OutcomeUnknownError("timeout 3")
    script = Script(TransientError("1"), TransientError("2"), last)
    with pytest.raises(OutcomeUnknownError) as raised:
        await call_with_retries(script, NO_WAIT, idempotent=True)
    assert raised.value is last
    assert script.calls == 3


@pytest.mark.parametrize(
    "error",
    [
        DestinationUnavailable("yibao", state="open", since=None, reason="down"),
        PermanentError("HTTP 400"),
        InputError("bad", field="mdtrt_id"),
        ValueError("engine bug"),
    ],
)
async def test_other_errors_end_the_attempt_at_once(error: Exception) -> None:
    script = Script(error)
    with pytest.raises(type(error)):
        await call_with_retries(script, NO_WAIT, idempotent=True)
    assert script.calls == 1


async def test_backoff_waits_between_tries() -> None:
    script = Script(TransientError("1"))
    settings = RetrySettings(attempts=2, initial_backoff=0.01, max_backoff=0.02)
    assert await call_with_retries(script, settings, idempotent=True) == "answer"
    assert script.calls == 2
