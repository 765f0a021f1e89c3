"""One delivery attempt through a destination's breaker and retry policy.

Shared by the sync path (HIS waits) and the outbox worker (store-and-forward): both call
`attempt_with_retries` and then decide what the results mean for the delivery's status.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from engine.adapters.base import Wire
from engine.attribution.facts import facts_from_error
from engine.attribution.rules import FailureFacts, FaultRule, decide
from engine.channels import Channel, Destination
from engine.errors import DestinationUnavailable, InputError, OutcomeUnknownError, PermanentError, TransientError
from engine.message import Payload, StageName, StorageMode, Verdict
from engine.resilience.retry import call_with_retries
from engine.store.records import StageRecord


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class AttemptResult:
    number: int
    started_at: datetime
    duration_ms: float
    wire: Wire
    reply: Payload | None = None
    error: Exception | None = None
    verdict: Verdict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def outcome(self) -> str:
        error = self.error
        if error is None:
            return "ok"
        if isinstance(error, DestinationUnavailable):
            return "short_circuited"
        if isinstance(error, OutcomeUnknownError):
            return "unknown"
        if isinstance(error, TransientError):
            return "transient"
        if isinstance(error, PermanentError):
            return "permanent"
        if isinstance(error, InputError):
            return "input"
        return "engine"

    # The attempt's wire facts are those of its last step: an earlier step (a sign-in before
    # the call) answering 200 says nothing about the call whose answer was lost.
    @property
    def http_status(self) -> int | None:
        status: object = self.wire.current.status_code
        if status is None:
            status = _detail(self.error, "http_status")
        return status if isinstance(status, int) else None

    @property
    def ack_code(self) -> str | None:
        code: object = self.wire.current.ack_code
        if code is None:
            code = _detail(self.error, "ack_code")
        return code if isinstance(code, str) else None

    def stages(self, delivery_id: int, mode: StorageMode) -> list[StageRecord]:
        """The wire and reply stages of this attempt, as the storage mode allows."""
        if mode is StorageMode.METADATA:
            return []
        stages: list[StageRecord] = []
        for step, record in enumerate(self.wire.records):
            if record.sent is not None:
                stages.append(StageRecord(StageName.SENT, record.sent, delivery_id, self.number, step))
            if record.response is not None:
                stages.append(
                    StageRecord(StageName.RESPONSE_RAW, record.response, delivery_id, self.number, step)
                )
        if self.reply is not None:
            stages.append(
                StageRecord(StageName.RESPONSE_TRANSFORMED, self.reply, delivery_id, self.number)
            )
        if self.error is not None:
            text = f"{type(self.error).__name__}: {self.error}"
            stages.append(
                StageRecord(StageName.ERROR, Payload(text.encode(), "text/plain"), delivery_id, self.number)
            )
        return stages


def _detail(error: Exception | None, key: str) -> object:
    detail = getattr(error, "detail", None)
    return detail.get(key) if isinstance(detail, dict) else None


@dataclass
class DeliveryRun:
    """All attempts made for one delivery in one go (one try, or several when retried)."""

    attempts: list[AttemptResult] = field(default_factory=list)

    @property
    def last(self) -> AttemptResult:
        return self.attempts[-1]


async def attempt_with_retries(
    channel: Channel,
    destination: Destination,
    request: Payload,
    *,
    first_number: int,
    attributor: Attributor,
) -> DeliveryRun:
    """Send `request` through the breaker, retrying only when the adapter declares it safe."""
    run = DeliveryRun()

    async def one_try() -> AttemptResult:
        result = await _attempt(channel, destination, request, first_number + len(run.attempts), attributor)
        run.attempts.append(result)
        if result.error is not None:
            raise result.error
        return result

    try:
        await call_with_retries(one_try, destination.config.retry, idempotent=destination.is_idempotent(request))
    except Exception:  # noqa: BLE001 - every failure is already recorded on its attempt
        pass
    return run


async def _attempt(
    channel: Channel, destination: Destination, request: Payload, number: int, attributor: Attributor
) -> AttemptResult:
    wire = Wire()
    started_at = utcnow()
    started = time.perf_counter()
    stage = "send"
    try:
        response = await destination.breaker.call(lambda: destination.adapter.send(request, wire))
        stage = "response"
        reply = destination.adapter.transform_response(response)
        return AttemptResult(number, started_at, _ms_since(started), wire, reply=reply)
    except Exception as exc:  # noqa: BLE001 - adapters may raise anything; attribution sorts it out
        verdict = attributor.attribute(exc, stage=stage, channel=channel, destination=destination, wire=wire)
        return AttemptResult(number, started_at, _ms_since(started), wire, error=exc, verdict=verdict)


class Attributor:
    """Names the party at fault for a failure, by the engine's fault rules.

    The same failure repeats while a destination is down (every call an open breaker
    refuses has the same facts), and trying some fifty rules costs more than the refusal
    itself, so verdicts are remembered by their facts: rules are fixed once the engine runs,
    and a verdict depends on nothing else.
    """

    MAX_REMEMBERED = 512

    def __init__(self, rules: list[FaultRule]) -> None:
        self.rules = sorted(rules, key=lambda rule: rule.priority)
        self._verdicts: dict[tuple[object, ...], Verdict] = {}

    def attribute(
        self, exc: BaseException, *, stage: str, channel: Channel, destination: Destination | None,
        wire: Wire | None = None,
    ) -> Verdict:
        adapter = destination.config.adapter if destination else ""
        facts = facts_from_error(exc, stage=stage, adapter=adapter, channel=channel.name, wire=wire)
        key = _facts_key(facts)
        if key is None:
            return decide(self.rules, facts)
        verdict = self._verdicts.get(key)
        if verdict is None:
            if len(self._verdicts) >= self.MAX_REMEMBERED:
                self._verdicts.clear()
            verdict = self._verdicts[key] = decide(self.rules, facts)
        return verdict


def _facts_key(facts: FailureFacts) -> tuple[object, ...] | None:
    """The facts as a dictionary key, or None when a field holds something unhashable."""
    key = (
        facts.stage, facts.error_kind, facts.message, facts.http_status, facts.ack_code, facts.adapter,
        facts.channel, tuple(facts.fields.items()),
    )
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
