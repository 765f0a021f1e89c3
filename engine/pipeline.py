"""The path of a message: intake → store → deliver → store every stage → attribute.

`Pipeline.call` serves sources (the HIS API, listeners); `Pipeline.deliver_claimed`
serves the outbox worker. Both end in one store write per attempt that carries the
attempt row, its stages and the delivery's new state together.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

import pluggy
import structlog

from engine.attribution.rules import FaultRule
from engine.business_keys import KeysOut, first_value
from engine.channels import Channel, Destination
from engine.delivery import AttemptResult, Attributor, DeliveryRun, attempt_with_retries, utcnow
from engine.errors import DestinationUnavailable, InputError, OutcomeUnknownError, TransientError
from engine.formats.registry import FormatRegistry
from engine.ids import new_id
from engine.intake import Routed, check_content, route, run_processors
from engine.message import Delivery, Payload, StageName, Status, StorageMode, Verdict
from engine.metrics import EngineMetrics
from engine.sources import Outcome, Receipt
from engine.store.records import (
    AttemptRecord,
    AttemptWrite,
    ClaimedDelivery,
    DeliveryUpdate,
    NewDelivery,
    NewMessage,
    StageRecord,
)
from engine.store.store import MessageStore

log = structlog.get_logger(__name__)
_level_of_log = logging.getLogger(__name__)  # the stdlib logger behind `log`, whose level decides

RELEASE_PAUSE = timedelta(seconds=1)
UNKNOWN_DELIVERY = 0  # filled in by the store when the call is written (`record_call`)
FINAL = frozenset({Status.SENT, Status.REPLIED, Status.FAILED, Status.DEAD, Status.FILTERED})


@dataclass
class Pipeline:
    channels: dict[str, Channel]
    store: MessageStore
    formats: FormatRegistry
    rules: list[FaultRule]
    metrics: EngineMetrics
    pm: pluggy.PluginManager
    wake_outbox: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        self.attributor = Attributor(self.rules)

    # --- intake -------------------------------------------------------------------------

    async def call(
        self, channel: Channel, payload: Payload, *, source: str, parent_id: str | None = None,
        store_and_forward: bool = False,
    ) -> Outcome:
        started = time.perf_counter()
        message_id = new_id()
        self.metrics.message_received(channel.name)
        structlog.contextvars.bind_contextvars(message_id=message_id, channel=channel.name)
        try:
            routed = self._intake(channel, payload)
            routed.store_and_forward = store_and_forward
        except Exception as exc:  # noqa: BLE001 - every intake failure is stored and attributed
            return await self._reject(channel, payload, exc, message_id, source, parent_id, started)
        finally:
            structlog.contextvars.unbind_contextvars("message_id", "channel")

        sync = routed.sync
        message = self._new_message(channel, payload, message_id, source, parent_id, routed)
        if sync is not None and not routed.queued and (
            sync.is_idempotent(routed.requests[sync.name]) or not sync.breaker.available
        ):
            return await self._call_then_record(channel, sync, routed, message, started)
        # committed before anything leaves: queued deliveries survive a crash, and a call that
        # is not safe to repeat (a settlement) is on record even if the daemon dies mid-call
        delivery_ids = await self.store.create_message(message, wait=True)
        if routed.queued:
            self.wake_outbox()
        if sync is None:
            status = routed.initial_status()
            self._log_finished(channel.name, "-", status, started, None)
            return Outcome(message_id, status, None, None)
        return await self._deliver_sync(channel, sync, routed, message_id, delivery_ids[sync.name], started)

    async def accept(self, channel: Channel, payload: Payload, *, source: str) -> Receipt:
        """Store first, deliver later: every destination is queued, and the receipt means
        the raw bytes are committed, so the source may acknowledge its sender."""
        outcome = await self.call(channel, payload, source=source, store_and_forward=True)
        return Receipt(outcome.message_id, channel.name, outcome.status, outcome.error)

    async def refuse(self, channel: Channel, payload: Payload, error: InputError, *, source: str) -> Receipt:
        """Store input a source refused before it became a message (a broken frame, a
        proprietary line on an ASTM port), raw bytes and all, as a failed message with
        its verdict, so the refusal is explainable like any other failure."""
        started = time.perf_counter()
        message_id = new_id()
        self.metrics.message_received(channel.name)
        outcome = await self._reject(channel, payload, error, message_id, source, None, started)
        return Receipt(outcome.message_id, channel.name, outcome.status, outcome.error)

    async def _reject(
        self, channel: Channel, payload: Payload, exc: Exception, message_id: str, source: str,
        parent_id: str | None, started: float,
    ) -> Outcome:
        verdict = self.attributor.attribute(exc, stage="validate", channel=channel, destination=None)
        await self._store_rejected(channel, payload, message_id, source, parent_id, verdict, exc)
        self._log_finished(channel.name, "-", Status.FAILED, started, verdict, message_id)
        return Outcome(message_id, Status.FAILED, None, _error_body(verdict, exc, None))

    def _intake(self, channel: Channel, payload: Payload) -> Routed:
        check_content(channel, payload)
        processed = run_processors(channel, payload)
        if processed is None:
            return Routed(payload, {}, [], list(channel.destinations), {})
        return route(channel, processed, self.formats)

    def _new_message(
        self, channel: Channel, payload: Payload, message_id: str, source: str,
        parent_id: str | None, routed: Routed,
    ) -> NewMessage:
        deliveries = [
            NewDelivery(d.name, Delivery.ASYNC, Status.QUEUED) if d in routed.queued
            else NewDelivery(d.name, d.delivery, Status.RECEIVED)
            for d in routed.routed
        ] + [NewDelivery(d.name, d.delivery, Status.FILTERED) for d in routed.skipped]
        keeps_raw = channel.config.storage is not StorageMode.METADATA or bool(routed.queued)
        return NewMessage(
            id=message_id,
            channel=channel.name,
            source=source,
            received_at=utcnow(),
            raw=payload if keeps_raw else None,
            content_type=payload.content_type,
            deliveries=deliveries,
            correlation_key=first_value(routed.business_keys),
            parent_id=parent_id,
            status=routed.initial_status(),
            business_keys=routed.business_keys,
        )

    async def _store_rejected(
        self, channel: Channel, payload: Payload, message_id: str, source: str,
        parent_id: str | None, verdict: Verdict, exc: Exception,
    ) -> None:
        message = NewMessage(
            id=message_id, channel=channel.name, source=source, received_at=utcnow(),
            raw=payload if channel.config.storage is not StorageMode.METADATA else None,
            content_type=payload.content_type, deliveries=[], parent_id=parent_id,
            status=Status.FAILED, verdict=verdict,
        )
        await self.store.create_message(message, wait=True)
        if channel.config.storage is not StorageMode.METADATA:
            error = Payload(f"{type(exc).__name__}: {exc}".encode(), "text/plain")
            await self.store.add_stages(message_id, [StageRecord(StageName.ERROR, error)])

    # --- sync delivery ------------------------------------------------------------------

    async def _call_then_record(
        self, channel: Channel, destination: Destination, routed: Routed, message: NewMessage,
        started: float,
    ) -> Outcome:
        """A call safe to repeat, or one an open breaker refuses: nothing is written before
        it; the whole call is queued as one write after it, and nobody waits for the disk."""
        request = routed.requests[destination.name]
        run = await attempt_with_retries(channel, destination, request, first_number=1, attributor=self.attributor)
        last = run.last
        status = _sync_status(last)
        writes = self._attempt_writes(
            channel, destination, UNKNOWN_DELIVERY, run, request, status=status, next_attempt_at=None,
            message_status=status,
        )
        self.store.record_call(message, destination.name, writes)
        self._finished(channel, destination, message.id, status, last, started)
        error = None if last.ok else _error_body(last.verdict, last.error, destination.name)
        return Outcome(message.id, status, last.reply, error)

    async def _deliver_sync(
        self, channel: Channel, destination: Destination, routed: Routed, message_id: str,
        delivery_id: int, started: float,
    ) -> Outcome:
        request = routed.requests[destination.name]
        run = await attempt_with_retries(channel, destination, request, first_number=1, attributor=self.attributor)
        last = run.last
        status = _sync_status(last)
        # HIS gets the reply once the record is written; its commit follows with the next group
        await self._record_run(
            channel, destination, delivery_id, message_id, run, request,
            status=status, next_attempt_at=None, message_status=status, wait=False,
        )
        self._finished(channel, destination, message_id, status, last, started)
        error = None if last.ok else _error_body(last.verdict, last.error, destination.name)
        return Outcome(message_id, status, last.reply, error)

    # --- async delivery (outbox) --------------------------------------------------------

    async def deliver_claimed(self, claimed: ClaimedDelivery, destination: Destination, channel: Channel) -> Status:
        """Deliver one leased outbox entry and write down what happened."""
        started = time.perf_counter()
        structlog.contextvars.bind_contextvars(message_id=claimed.message_id, channel=channel.name)
        try:
            request = claimed.transformed or destination.adapter.transform(_processed(channel, claimed))
        except Exception as exc:  # noqa: BLE001 - a request that cannot be built is dead, with a verdict
            verdict = self.attributor.attribute(exc, stage="transform", channel=channel, destination=destination)
            await self._record_dead_on_transform(claimed, verdict, exc)
            self._log_finished(channel.name, destination.name, Status.DEAD, started, verdict)
            return Status.DEAD
        finally:
            structlog.contextvars.unbind_contextvars("message_id", "channel")
        run = await attempt_with_retries(
            channel, destination, request, first_number=claimed.attempts + 1, attributor=self.attributor
        )
        last = run.last
        if isinstance(last.error, DestinationUnavailable) and len(run.attempts) == 1:
            # claimed while a probe was let through elsewhere; the worker claims nothing for
            # this destination until its breaker lets calls through again
            await self.store.release(claimed.delivery_id, next_attempt_at=utcnow() + RELEASE_PAUSE)
            return Status.QUEUED
        status, next_at, verdict_override = self._async_status(claimed, destination, request, last)
        if verdict_override is not None:
            last.verdict = verdict_override
        message_status = await self._aggregate_status(claimed.message_id, claimed.delivery_id, status)
        await self._record_run(
            channel, destination, claimed.delivery_id, claimed.message_id, run, request,
            status=status, next_attempt_at=next_at, message_status=message_status,
            include_request=claimed.transformed is None and claimed.attempts == 0,
            pending=Status.QUEUED,
        )
        if status in FINAL:
            self._finished(channel, destination, claimed.message_id, status, last, started)
        return status

    def _async_status(
        self, claimed: ClaimedDelivery, destination: Destination, request: Payload, last: AttemptResult
    ) -> tuple[Status, datetime | None, Verdict | None]:
        if last.ok:
            return Status.SENT, None, None
        error = last.error
        policy = destination.config.outbox
        attempts = last.number
        age = (utcnow() - claimed.received_at).total_seconds()
        if isinstance(error, OutcomeUnknownError) and not destination.is_idempotent(request):
            reason = (
                f"{last.verdict.reason if last.verdict else error}; not retried because "
                f"{destination.name} is not safe to repeat: check the remote side, then replay"
            )
            return Status.DEAD, None, _with_reason(last.verdict, reason)
        if not isinstance(error, TransientError | DestinationUnavailable):
            return Status.DEAD, None, None
        if attempts >= policy.max_attempts or age >= policy.max_age_seconds:
            limit = f"{attempts} attempts" if attempts >= policy.max_attempts else f"{age:.0f}s old"
            reason = f"gave up after {limit}; last failure: {last.verdict.reason if last.verdict else error}"
            return Status.DEAD, None, _with_reason(last.verdict, reason)
        backoff = min(policy.max_backoff, policy.initial_backoff * 2 ** (attempts - 1))
        return Status.QUEUED, utcnow() + timedelta(seconds=backoff), None

    async def _aggregate_status(self, message_id: str, delivery_id: int, new: Status) -> Status | None:
        """The message's overall status once this delivery takes `new`."""
        view = await self.store.get_message(message_id)
        if view is None:
            return None
        statuses = [Status(new) if d.id == delivery_id else Status(d.status) for d in view.deliveries]
        if any(s in (Status.RECEIVED, Status.QUEUED) for s in statuses):
            return Status.QUEUED if Status(view.status) is not Status.REPLIED else None
        for worst in (Status.DEAD, Status.FAILED, Status.SHORT_CIRCUITED):
            if worst in statuses:
                return worst
        return Status.REPLIED if Status.REPLIED in statuses else Status.SENT

    async def _record_dead_on_transform(self, claimed: ClaimedDelivery, verdict: Verdict, exc: Exception) -> None:
        now = utcnow()
        attempt = AttemptRecord(
            claimed.delivery_id, claimed.attempts + 1, now, 0.0, "engine" if verdict.party == "engine" else "input",
            error=f"{type(exc).__name__}: {exc}", verdict=verdict,
        )
        update = DeliveryUpdate(claimed.delivery_id, Status.DEAD, claimed.attempts + 1, verdict)
        status = await self._aggregate_status(claimed.message_id, claimed.delivery_id, Status.DEAD)
        await self.store.record_attempt(
            attempt, [], update, message_status=status, message_verdict=verdict, message_id=claimed.message_id
        )

    # --- shared -------------------------------------------------------------------------

    async def _record_run(
        self, channel: Channel, destination: Destination, delivery_id: int, message_id: str, run: DeliveryRun,
        request: Payload, *, status: Status, next_attempt_at: datetime | None, message_status: Status | None,
        include_request: bool = True, pending: Status = Status.RECEIVED, wait: bool = True,
    ) -> None:
        writes = self._attempt_writes(
            channel, destination, delivery_id, run, request, status=status, next_attempt_at=next_attempt_at,
            message_status=message_status, include_request=include_request, pending=pending,
        )
        await self.store.record_attempts(message_id, writes, wait=wait)

    def _attempt_writes(
        self, channel: Channel, destination: Destination, delivery_id: int, run: DeliveryRun, request: Payload,
        *, status: Status, next_attempt_at: datetime | None, message_status: Status | None,
        include_request: bool = True, pending: Status = Status.RECEIVED,
    ) -> list[AttemptWrite]:
        mode = channel.config.storage
        writes = []
        for index, result in enumerate(run.attempts):
            final = index == len(run.attempts) - 1
            stages = result.stages(delivery_id, mode)
            if index == 0 and include_request and mode is StorageMode.FULL:
                stages.insert(0, StageRecord(StageName.TRANSFORMED, request, delivery_id, result.number))
            update = DeliveryUpdate(
                delivery_id, status if final else pending, result.number, result.verdict,
                next_attempt_at if final else None,
            )
            writes.append(AttemptWrite(
                _attempt_record(delivery_id, result), stages, update,
                message_status if final else None, result.verdict if final else None,
                _reply_keys(destination, result) if final else {},
            ))
        return writes

    def _finished(
        self, channel: Channel, destination: Destination, message_id: str, status: Status,
        last: AttemptResult, started: float,
    ) -> None:
        self.metrics.delivery_finished(channel.name, destination.name, status.value, time.perf_counter() - started)
        self._log_finished(channel.name, destination.name, status, started, last.verdict, message_id)
        verdict = _verdict_dict(last.verdict)
        try:
            self.pm.hook.hisbridge_message_finished(
                message_id=message_id, channel=channel.name, destination=destination.name,
                status=status.value, verdict=verdict,
            )
        except Exception:  # an observer must never break delivery
            log.exception("observer hook failed", hook="hisbridge_message_finished")

    def _log_finished(
        self, channel: str, destination: str, status: Status, started: float,
        verdict: Verdict | None, message_id: str | None = None,
    ) -> None:
        if not _level_of_log.isEnabledFor(logging.INFO):
            return  # nothing to build when the line would be dropped
        fields: dict[str, Any] = {"channel": channel, "destination": destination, "status": status.value,
                                  "ms": round((time.perf_counter() - started) * 1000, 1)}
        if message_id:
            fields["message_id"] = message_id
        if verdict is not None:
            fields.update(party=verdict.party.value, rule=verdict.rule_id)
        log.info("message", **fields)


def _sync_status(result: AttemptResult) -> Status:
    if result.ok:
        return Status.REPLIED
    if isinstance(result.error, DestinationUnavailable):
        return Status.SHORT_CIRCUITED
    return Status.FAILED


def _attempt_record(delivery_id: int, result: AttemptResult) -> AttemptRecord:
    return AttemptRecord(
        delivery_id=delivery_id,
        number=result.number,
        started_at=result.started_at,
        duration_ms=result.duration_ms,
        outcome=result.outcome,
        http_status=result.http_status,
        ack_code=result.ack_code,
        error=None if result.error is None else f"{type(result.error).__name__}: {result.error}",
        verdict=result.verdict,
    )


def _processed(channel: Channel, claimed: ClaimedDelivery) -> Payload:
    """The stored raw message through the channel's processors again, as at intake."""
    if claimed.raw is None:
        raise LookupError(f"message {claimed.message_id} has no stored raw stage to send")
    processed = run_processors(channel, claimed.raw)
    if processed is None:
        raise LookupError(f"message {claimed.message_id} was filtered out by a processor at delivery")
    return processed


def _with_reason(verdict: Verdict | None, reason: str) -> Verdict | None:
    if verdict is None:
        return None
    return Verdict(verdict.party, verdict.rule_id, reason, verdict.remedy)


def _verdict_dict(verdict: Verdict | None) -> dict[str, Any] | None:
    if verdict is None:
        return None
    return {"party": verdict.party.value, "rule_id": verdict.rule_id, "reason": verdict.reason,
            "remedy": verdict.remedy}


def _error_body(verdict: Verdict | None, exc: Exception | None, destination: str | None) -> dict[str, Any]:
    body: dict[str, Any] = _verdict_dict(verdict) or {}
    body["destination"] = destination
    detail = getattr(exc, "detail", None)
    if isinstance(detail, dict):
        body.update({k: v for k, v in detail.items() if k in ("http_status", "ack_code", "condition")})
    if isinstance(exc, DestinationUnavailable):
        body.update(state=exc.state, since=exc.since.isoformat() if exc.since else None)
    field = getattr(exc, "field", None)
    if field:
        body["field"] = field
    return body


def _reply_keys(destination: Destination, result: AttemptResult) -> KeysOut:
    if result.reply is None:
        return {}
    try:
        return destination.adapter.extract_reply_keys(result.reply)
    except Exception as exc:  # noqa: BLE001 - a key we cannot read must not lose a delivered reply
        log.error("reply keys not extracted", destination=destination.name, error=repr(exc))
        return {}
