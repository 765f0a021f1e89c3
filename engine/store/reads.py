"""Read queries, run on the pooled reader connections (WAL lets them run beside the writer)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from engine.business_keys import view as keys_view
from engine.message import Payload, Status
from engine.store.database import from_db_time, to_db_time, utc_now
from engine.store.records import DeliveryView, MessageView
from engine.store.schema import (
    attempts,
    breaker_events,
    business_keys,
    deliveries,
    messages,
    stages,
    suspensions,
)
from engine.store.writes import stage_payload

FAILED_STATUSES = (str(Status.FAILED), str(Status.DEAD), str(Status.SHORT_CIRCUITED))


def get_message(connection: sa.Connection, message_id: str, with_stages: bool) -> MessageView | None:
    row = connection.execute(sa.select(messages).where(messages.c.id == message_id)).first()
    if row is None:
        return None
    view = _views(connection, [row], with_attempts=True)[0]
    if with_stages:
        view.stages = _stages(connection, message_id)
    return view


def list_messages(
    connection: sa.Connection, *, channel: str | None, status: str | None, party: str | None,
    since: datetime | None, until: datetime | None, key: tuple[str, str] | None, limit: int,
) -> list[MessageView]:
    query = sa.select(messages)
    if channel is not None:
        query = query.where(messages.c.channel == channel)
    if status is not None:
        query = query.where(messages.c.status == status)
    if party is not None:
        query = query.where(messages.c.party == party)
    if since is not None:
        query = query.where(messages.c.received_at >= to_db_time(since))
    if until is not None:
        query = query.where(messages.c.received_at < to_db_time(until))
    if key is not None:
        query = query.where(messages.c.id.in_(_ids_with_key(*key)))
    query = query.order_by(messages.c.received_at.desc(), messages.c.id.desc()).limit(limit)
    return _views(connection, connection.execute(query).all(), with_attempts=False)


def find_by_key(connection: sa.Connection, name: str, value: str) -> list[str]:
    return list(connection.execute(
        sa.select(messages.c.id).where(messages.c.id.in_(_ids_with_key(name, value)))
        .order_by(messages.c.id)
    ).scalars())


def _ids_with_key(name: str, value: str) -> sa.Select[tuple[str]]:
    return sa.select(business_keys.c.message_id).where(
        business_keys.c.name == name, business_keys.c.value == value
    )


def _views(connection: sa.Connection, rows: Sequence[Any], *, with_attempts: bool) -> list[MessageView]:
    ids = [row.id for row in rows]
    if not ids:
        return []
    keys: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in connection.execute(
        sa.select(business_keys).where(business_keys.c.message_id.in_(ids))
    ):
        keys[key.message_id].append((key.name, key.value))
    by_message: dict[str, list[DeliveryView]] = defaultdict(list)
    views_by_id: dict[int, DeliveryView] = {}
    for delivery in connection.execute(
        sa.select(deliveries).where(deliveries.c.message_id.in_(ids)).order_by(deliveries.c.id)
    ):
        view = DeliveryView(
            id=delivery.id, destination=delivery.destination, delivery=delivery.delivery,
            status=delivery.status, attempts=delivery.attempts,
            next_attempt_at=from_db_time(delivery.next_attempt_at), party=delivery.party,
            rule_id=delivery.rule_id, reason=delivery.reason,
        )
        by_message[delivery.message_id].append(view)
        views_by_id[delivery.id] = view
    if with_attempts and views_by_id:
        for attempt in connection.execute(
            sa.select(attempts).where(attempts.c.delivery_id.in_(list(views_by_id)))
            .order_by(attempts.c.id)
        ):
            row = attempt._asdict()
            row["started_at"] = from_db_time(row["started_at"])
            views_by_id[attempt.delivery_id].attempt_rows.append(row)
    return [
        MessageView(
            id=row.id, channel=row.channel, source=row.source,
            correlation_key=row.correlation_key, parent_id=row.parent_id,
            received_at=to_db_time(row.received_at), content_type=row.content_type,
            status=row.status, party=row.party, rule_id=row.rule_id, reason=row.reason,
            business_keys=keys_view(keys[row.id]), deliveries=by_message[row.id],
        )
        for row in rows
    ]


def _stages(connection: sa.Connection, message_id: str) -> list[dict[str, Any]]:
    rows = connection.execute(
        sa.select(stages, deliveries.c.destination)
        .outerjoin(deliveries, deliveries.c.id == stages.c.delivery_id)
        .where(stages.c.message_id == message_id)
        .order_by(stages.c.id)
    )
    return [
        {
            "name": row.name, "destination": row.destination, "attempt": row.attempt,
            "step": row.step, "content_type": row.content_type, "headers": dict(row.headers or {}),
            "body": row.body or b"", "created_at": from_db_time(row.created_at),
        }
        for row in rows
    ]


def get_stage(
    connection: sa.Connection, message_id: str, name: str, delivery: str | None,
    attempt: int | None,
) -> Payload | None:
    query = sa.select(stages.c.body, stages.c.content_type, stages.c.headers).where(
        stages.c.message_id == message_id, stages.c.name == name
    )
    if delivery is not None:
        query = query.join(deliveries, deliveries.c.id == stages.c.delivery_id).where(
            deliveries.c.destination == delivery
        )
    if attempt is not None:
        query = query.where(stages.c.attempt == attempt)
    row = connection.execute(query.order_by(stages.c.id.desc()).limit(1)).first()
    return None if row is None else stage_payload(row)


def queue_depths(connection: sa.Connection) -> dict[str, tuple[int, float]]:
    now = utc_now()
    rows = connection.execute(
        sa.select(deliveries.c.destination, sa.func.count(), sa.func.min(deliveries.c.created_at))
        .where(deliveries.c.status == str(Status.QUEUED))
        .group_by(deliveries.c.destination)
    )
    return {
        destination: (count, max(0.0, (now - to_db_time(oldest)).total_seconds()))
        for destination, count, oldest in rows
    }


def suspension_rows(connection: sa.Connection) -> dict[str, dict[str, Any]]:
    return {
        row.breaker: {"reason": row.reason, "suspended_by": row.suspended_by,
                      "since": from_db_time(row.since)}
        for row in connection.execute(sa.select(suspensions).order_by(suspensions.c.breaker))
    }


def last_breaker_events(connection: sa.Connection) -> dict[str, dict[str, Any]]:
    """The newest recorded transition of every breaker."""
    newest = (
        sa.select(breaker_events.c.breaker, sa.func.max(breaker_events.c.id).label("id"))
        .group_by(breaker_events.c.breaker)
        .subquery()
    )
    rows = connection.execute(
        sa.select(breaker_events).join(newest, breaker_events.c.id == newest.c.id)
    )
    return {
        row.breaker: {"old_state": row.old_state, "new_state": row.new_state,
                      "reason": row.reason, "at": from_db_time(row.at)}
        for row in rows
    }


def stats(connection: sa.Connection, since: datetime) -> dict[str, Any]:
    hour = _hour_bucket(connection)
    failed = sa.func.sum(sa.case((messages.c.status.in_(FAILED_STATUSES), 1), else_=0))
    recent = messages.c.received_at >= to_db_time(since)
    volume = connection.execute(
        sa.select(messages.c.channel, hour.label("hour"), sa.func.count(), failed)
        .where(recent)
        .group_by(messages.c.channel, hour)
        .order_by(hour, messages.c.channel)
    )
    failures = connection.execute(
        sa.select(messages.c.channel, messages.c.party, sa.func.count())
        .where(recent, messages.c.party.is_not(None))
        .group_by(messages.c.channel, messages.c.party)
        .order_by(sa.func.count().desc(), messages.c.channel, messages.c.party)
    )
    return {
        "volume": [
            {"channel": channel, "hour": _parse_hour(bucket), "received": count,
             "failed": int(failed_count or 0)}
            for channel, bucket, count, failed_count in volume
        ],
        "failures": [
            {"channel": channel, "party": party, "count": count}
            for channel, party, count in failures
        ],
    }


def _hour_bucket(connection: sa.Connection) -> sa.ColumnElement[Any]:
    if connection.dialect.name == "postgresql":
        return sa.func.to_char(
            sa.func.timezone("UTC", messages.c.received_at), "YYYY-MM-DD HH24:00"
        )
    return sa.func.strftime("%Y-%m-%d %H:00", messages.c.received_at)


def _parse_hour(bucket: str) -> datetime:
    return datetime.strptime(bucket, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
