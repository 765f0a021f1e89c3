"""Plain records passed between the pipeline and the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.business_keys import KeysOut, KeysView
from engine.message import Delivery, Payload, StageName, Status, Verdict


@dataclass(frozen=True)
class NewDelivery:
    destination: str
    delivery: Delivery
    status: Status  # received (sync, about to be sent), queued (async), filtered


@dataclass(frozen=True)
class NewMessage:
    id: str
    channel: str
    source: str
    received_at: datetime
    raw: Payload | None  # None when the channel stores metadata only
    content_type: str
    deliveries: list[NewDelivery]
    correlation_key: str | None = None
    parent_id: str | None = None
    status: Status = Status.RECEIVED
    verdict: Verdict | None = None
    business_keys: KeysOut = field(default_factory=dict)


@dataclass(frozen=True)
class StageRecord:
    name: StageName
    payload: Payload
    delivery_id: int | None = None
    attempt: int | None = None
    step: int = 0


@dataclass(frozen=True)
class AttemptRecord:
    delivery_id: int
    number: int
    started_at: datetime
    duration_ms: float
    outcome: str
    http_status: int | None = None
    ack_code: str | None = None
    error: str | None = None
    verdict: Verdict | None = None
    replay_of: str | None = None


@dataclass(frozen=True)
class DeliveryUpdate:
    """The end state of one attempt at a delivery, written with its attempt and stages."""

    delivery_id: int
    status: Status
    attempts: int
    verdict: Verdict | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class AttemptWrite:
    """Everything one attempt writes: the attempt row, its stages, the delivery's new state
    and, for the last attempt of a run, the message's status and verdict."""

    attempt: AttemptRecord
    stages: list[StageRecord]
    update: DeliveryUpdate
    message_status: Status | None = None
    message_verdict: Verdict | None = None
    keys: KeysOut = field(default_factory=dict)
    """Business keys the reply revealed (`Adapter.extract_reply_keys`), on the last attempt."""


@dataclass(frozen=True)
class ClaimedDelivery:
    """A queued async delivery the outbox worker has leased."""

    delivery_id: int
    message_id: str
    channel: str
    destination: str
    attempts: int
    received_at: datetime
    content_type: str
    transformed: Payload | None  # the stored transformed stage, when the channel keeps one
    raw: Payload | None


@dataclass
class DeliveryView:
    id: int
    destination: str
    delivery: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    party: str | None
    rule_id: str | None
    reason: str | None
    attempt_rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class MessageView:
    """A message with its deliveries; `stages` filled only when payloads were asked for."""

    id: str
    channel: str
    source: str
    correlation_key: str | None
    parent_id: str | None
    received_at: datetime
    content_type: str
    status: str
    party: str | None
    rule_id: str | None
    reason: str | None
    business_keys: KeysView
    deliveries: list[DeliveryView]
    stages: list[dict[str, Any]] = field(default_factory=list)
