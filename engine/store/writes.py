"""Write operations run by the group-commit writer. Each takes the writer's Connection
inside an open transaction and must not commit; plain Core statements only."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.business_keys import KeysOut
from engine.business_keys import rows as key_rows
from engine.message import UNFINISHED, Delivery, Payload, StageName, Status, Verdict
from engine.store.database import to_db_time, utc_now
from engine.store.records import (
    AttemptRecord,
    ClaimedDelivery,
    DeliveryUpdate,
    NewDelivery,
    NewMessage,
    StageRecord,
)
from engine.store.schema import (
    attempts,
    breaker_events,
    business_keys,
    deliveries,
    messages,
    payload_reads,
    stages,
    suspensions,
)

PRUNE_BATCH = 500

# Built once: SQLAlchemy then reuses their cache keys and compiled SQL, which matters on the
# writer thread where per-statement Python overhead bounds the throughput.
INSERT_MESSAGE = messages.insert()
INSERT_DELIVERIES = deliveries.insert().returning(deliveries.c.id, sort_by_parameter_order=True)
INSERT_STAGE = stages.insert()
INSERT_ATTEMPT = attempts.insert()
UPDATE_MESSAGE = messages.update().where(messages.c.id == sa.bindparam("message_id_"))
UPDATE_DELIVERY = deliveries.update().where(deliveries.c.id == sa.bindparam("delivery_id_"))


def verdict_columns(verdict: Verdict | None) -> dict[str, Any]:
    if verdict is None:
        return {"party": None, "rule_id": None, "reason": None}
    return {"party": str(verdict.party), "rule_id": verdict.rule_id, "reason": verdict.reason}


def _finished_at(status: Status, now: datetime) -> datetime | None:
    return None if status in UNFINISHED else now


class CreateMessage:
    """Insert a message with its raw stage, business keys and deliveries.

    The writer runs consecutive creates together (`run_together`): one multi-row statement
    per table for the whole run instead of one per message, which is what keeps a group's
    work small, above all on PostgreSQL where every statement is a round trip.

    The delivery ids of the first successful run are pinned and reused if the writer runs
    the operation again (after a failed group), because an early caller already has them."""

    def __init__(self, message: NewMessage) -> None:
        self.message = message
        self._pinned: dict[str, int] | None = None

    def __call__(self, connection: sa.Connection) -> dict[str, int]:
        return self.run_together(connection, [self])[0]

    @staticmethod
    def run_together(
        connection: sa.Connection, creates: list[CreateMessage]
    ) -> list[dict[str, int]]:
        now = utc_now()
        connection.execute(INSERT_MESSAGE, [create._message_row(now) for create in creates])
        insert_stage_rows(connection, [
            _stage_row(create.message.id, StageRecord(StageName.RAW, create.message.raw), now)
            for create in creates if create.message.raw is not None
        ])
        insert_business_key_rows(connection, [
            row for create in creates for row in key_rows(create.message.id, create.message.business_keys)
        ])
        slots = [(n, new) for n, create in enumerate(creates) for new in create.message.deliveries]
        rows = [creates[n]._delivery_row(new, now) for n, new in slots]
        fresh = [row for row in rows if "id" not in row]
        pinned = [row for row in rows if "id" in row]
        fresh_ids = iter(connection.execute(INSERT_DELIVERIES, fresh).scalars().all()
                         if fresh else [])
        if pinned:
            connection.execute(INSERT_DELIVERIES, pinned)
        results: list[dict[str, int]] = [{} for _ in creates]
        for (n, new), row in zip(slots, rows, strict=True):
            results[n][new.destination] = row["id"] if "id" in row else next(fresh_ids)
        for create, ids in zip(creates, results, strict=True):
            create._pinned = ids
        return results

    def _message_row(self, now: datetime) -> dict[str, Any]:
        message = self.message
        return {
            "id": message.id, "channel": message.channel, "source": message.source,
            "correlation_key": message.correlation_key, "parent_id": message.parent_id,
            "received_at": to_db_time(message.received_at),
            "content_type": message.content_type, "status": str(message.status),
            "finished_at": _finished_at(message.status, now),
            **verdict_columns(message.verdict),
        }

    def _delivery_row(self, new: NewDelivery, now: datetime) -> dict[str, Any]:
        row: dict[str, Any] = {
            "message_id": self.message.id, "destination": new.destination,
            "delivery": str(new.delivery), "status": str(new.status), "attempts": 0,
            "created_at": now, "updated_at": now,
        }
        if self._pinned is not None:
            row["id"] = self._pinned[new.destination]
        return row


def _stage_row(message_id: str, record: StageRecord, now: datetime) -> dict[str, Any]:
    return {
        "message_id": message_id, "delivery_id": record.delivery_id,
        "attempt": record.attempt, "step": record.step, "name": str(record.name),
        "content_type": record.payload.content_type,
        "headers": dict(record.payload.headers), "body": record.payload.body,
        "created_at": now,
    }


def insert_stages(
    connection: sa.Connection, message_id: str, records: Iterable[StageRecord],
    now: datetime | None = None,
) -> None:
    now = now or utc_now()
    insert_stage_rows(connection, [_stage_row(message_id, record, now) for record in records])


def insert_stage_rows(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(INSERT_STAGE, rows)


def insert_business_key_rows(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection.execute(_insert_keys(connection.dialect.name), rows)


@functools.cache
def _insert_keys(dialect: str) -> sa.Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(business_keys).on_conflict_do_nothing()


def set_message_status(
    connection: sa.Connection, message_id: str, status: Status, verdict: Verdict | None
) -> None:
    _update_all(connection, UPDATE_MESSAGE,
                [_status_row(message_id, status, verdict, utc_now())], f"message {message_id}")


class RecordAttempt:
    """Append one attempt with its stages, move its delivery on, and (when given) set the
    message's status, verdict and new business keys.

    Consecutive attempts in a group run together: one multi-row statement per table. Each
    table's rows keep submission order, so the end state equals running them one by one."""

    def __init__(
        self, *, message_id: str, attempt: AttemptRecord, stage_records: list[StageRecord],
        update: DeliveryUpdate, message_status: Status | None, message_verdict: Verdict | None,
        keys: KeysOut,
    ) -> None:
        self.message_id = message_id
        self.attempt = attempt
        self.stage_records = stage_records
        self.update = update
        self.message_status = message_status
        self.message_verdict = message_verdict
        self.keys = keys

    def __call__(self, connection: sa.Connection) -> None:
        self.run_together(connection, [self])

    @staticmethod
    def run_together(connection: sa.Connection, records: list[RecordAttempt]) -> list[None]:
        now = utc_now()
        connection.execute(INSERT_ATTEMPT, [record._attempt_row() for record in records])
        insert_stage_rows(connection, [
            _stage_row(record.message_id, stage, now)
            for record in records for stage in record.stage_records
        ])
        _update_all(connection, UPDATE_DELIVERY,
                    [record._delivery_row(now) for record in records], "delivery")
        _update_all(connection, UPDATE_MESSAGE, [
            _status_row(record.message_id, record.message_status, record.message_verdict, now)
            for record in records if record.message_status is not None
        ], "message")
        insert_business_key_rows(connection, [
            row for record in records for row in key_rows(record.message_id, record.keys)
        ])
        return [None] * len(records)

    def _attempt_row(self) -> dict[str, Any]:
        attempt = self.attempt
        verdict = verdict_columns(attempt.verdict)
        return {
            "delivery_id": attempt.delivery_id, "number": attempt.number,
            "started_at": to_db_time(attempt.started_at), "duration_ms": attempt.duration_ms,
            "outcome": attempt.outcome, "http_status": attempt.http_status,
            "ack_code": attempt.ack_code, "error": attempt.error,
            "replay_of": attempt.replay_of, "party": verdict["party"],
            "rule_id": verdict["rule_id"],
        }

    def _delivery_row(self, now: datetime) -> dict[str, Any]:
        update = self.update
        return {
            "delivery_id_": update.delivery_id, "status": str(update.status),
            "attempts": update.attempts,
            "next_attempt_at": _optional_time(update.next_attempt_at),
            "claimed_by": None, "claimed_until": None, "updated_at": now,
            **verdict_columns(update.verdict),
        }


def _status_row(
    message_id: str, status: Status, verdict: Verdict | None, now: datetime
) -> dict[str, Any]:
    return {"message_id_": message_id, "status": str(status),
            "finished_at": _finished_at(status, now), **verdict_columns(verdict)}


def _update_all(
    connection: sa.Connection, statement: sa.Update, rows: list[dict[str, Any]], what: str
) -> None:
    """Run an UPDATE for every row; a row that matched nothing fails the whole operation
    (the writer's one-by-one re-run then pins the failure on its caller)."""
    if rows and connection.execute(statement, rows).rowcount != len(rows):
        raise LookupError(f"no such {what}")


def _optional_time(moment: datetime | None) -> datetime | None:
    return None if moment is None else to_db_time(moment)


# --- outbox ---------------------------------------------------------------------------


@functools.cache
def _due_query(dialect: str, filtered: bool) -> sa.Select[tuple[int]]:
    now: sa.BindParameter[datetime] = sa.bindparam("now")
    query = (
        sa.select(deliveries.c.id)
        .where(
            deliveries.c.delivery == str(Delivery.ASYNC),
            deliveries.c.status == str(Status.QUEUED),
            sa.or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= now),
            sa.or_(deliveries.c.claimed_until.is_(None), deliveries.c.claimed_until <= now),
        )
        .order_by(deliveries.c.id)
        .limit(sa.bindparam("limit"))
    )
    if filtered:
        query = query.where(
            deliveries.c.destination.in_(sa.bindparam("destinations", expanding=True))
        )
    if dialect == "postgresql":
        # Rows another process is claiming right now are skipped, not waited for; its
        # commit sets claimed_until, which the WHERE above then excludes.
        query = query.with_for_update(skip_locked=True)
    return query


CLAIM = deliveries.update().where(deliveries.c.id.in_(sa.bindparam("ids", expanding=True)))
CLAIMED_ROWS = (
    sa.select(
        deliveries.c.id, deliveries.c.message_id, deliveries.c.destination,
        deliveries.c.attempts, messages.c.channel, messages.c.received_at,
        messages.c.content_type,
    )
    .join(messages, messages.c.id == deliveries.c.message_id)
    .where(deliveries.c.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(deliveries.c.id)
)
CLAIMED_STAGES = (
    sa.select(stages.c.message_id, stages.c.delivery_id, stages.c.name, stages.c.body,
              stages.c.content_type, stages.c.headers)
    .where(stages.c.message_id.in_(sa.bindparam("message_ids", expanding=True)),
           stages.c.name.in_([str(StageName.RAW), str(StageName.TRANSFORMED)]))
    .order_by(stages.c.id)
)


def claim_due(
    connection: sa.Connection, *, worker: str, limit: int, lease_seconds: float,
    now: datetime, destinations: list[str] | None,
) -> list[ClaimedDelivery]:
    now = to_db_time(now)
    parameters: dict[str, Any] = {"now": now, "limit": limit}
    if destinations is not None:
        if not destinations:
            return []
        parameters["destinations"] = destinations
    due = _due_query(connection.dialect.name, destinations is not None)
    ids = list(connection.execute(due, parameters).scalars())
    if not ids:
        return []
    connection.execute(CLAIM, {"ids": ids, "claimed_by": worker, "updated_at": utc_now(),
                               "claimed_until": now + timedelta(seconds=lease_seconds)})
    rows = connection.execute(CLAIMED_ROWS, {"ids": ids}).all()
    payloads = _claimed_payloads(connection, {row.message_id for row in rows})
    return [
        ClaimedDelivery(
            delivery_id=row.id, message_id=row.message_id, channel=row.channel,
            destination=row.destination, attempts=row.attempts,
            received_at=to_db_time(row.received_at), content_type=row.content_type,
            transformed=payloads.get((row.message_id, StageName.TRANSFORMED, row.id))
            or payloads.get((row.message_id, StageName.TRANSFORMED, None)),
            raw=payloads.get((row.message_id, StageName.RAW, None)),
        )
        for row in rows
    ]


def _claimed_payloads(
    connection: sa.Connection, message_ids: set[str]
) -> dict[tuple[str, str, int | None], Payload]:
    """Newest raw and transformed stage per (message, name, delivery): rows come oldest
    first, so later ones overwrite earlier ones."""
    return {
        (row.message_id, row.name, row.delivery_id): stage_payload(row)
        for row in connection.execute(CLAIMED_STAGES, {"message_ids": list(message_ids)})
    }


def stage_payload(row: Any) -> Payload:
    return Payload(body=row.body or b"", content_type=row.content_type,
                   headers=dict(row.headers or {}))


def release(connection: sa.Connection, delivery_id: int, next_attempt_at: datetime) -> None:
    connection.execute(UPDATE_DELIVERY, {
        "delivery_id_": delivery_id, "claimed_by": None, "claimed_until": None,
        "next_attempt_at": to_db_time(next_attempt_at), "updated_at": utc_now(),
    })


def expedite(connection: sa.Connection, destinations: list[str], now: datetime) -> int:
    """Make every queued delivery to these destinations due now (their breaker closed)."""
    result = connection.execute(
        sa.update(deliveries)
        .where(deliveries.c.status == str(Status.QUEUED))
        .where(deliveries.c.destination.in_(destinations))
        .where(deliveries.c.next_attempt_at > to_db_time(now))
        .values(next_attempt_at=to_db_time(now), updated_at=to_db_time(now))
    )
    return int(result.rowcount or 0)


def requeue_expired_claims(connection: sa.Connection, now: datetime) -> int:
    result = connection.execute(
        deliveries.update()
        .where(deliveries.c.claimed_until.is_not(None),
               deliveries.c.claimed_until <= to_db_time(now))
        .values(claimed_by=None, claimed_until=None, updated_at=utc_now())
    )
    return result.rowcount


# --- breakers, suspensions, audit -------------------------------------------------------


def record_breaker_event(
    connection: sa.Connection, breaker: str, old: str, new: str, reason: str
) -> None:
    connection.execute(breaker_events.insert().values(
        breaker=breaker, old_state=old, new_state=new, reason=reason, at=utc_now()
    ))


def suspend(connection: sa.Connection, breaker: str, reason: str, by: str) -> None:
    """Suspend a breaker; suspending it again updates the reason but keeps `since`."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(suspensions).values(
        breaker=breaker, reason=reason, suspended_by=by, since=utc_now()
    )
    connection.execute(statement.on_conflict_do_update(
        index_elements=[suspensions.c.breaker],
        set_={"reason": statement.excluded.reason,
              "suspended_by": statement.excluded.suspended_by},
    ))


def resume(connection: sa.Connection, breaker: str) -> bool:
    result = connection.execute(suspensions.delete().where(suspensions.c.breaker == breaker))
    return result.rowcount > 0


def audit_read(connection: sa.Connection, who: str, message_id: str, action: str,
               remote: str) -> None:
    connection.execute(payload_reads.insert().values(
        who=who, at=utc_now(), message_id=message_id, action=action, remote=remote
    ))


# --- retention ------------------------------------------------------------------------


def prune_batch(connection: sa.Connection, older_than: datetime) -> int:
    """Delete up to PRUNE_BATCH finished messages received before `older_than`."""
    unfinished = [str(status) for status in UNFINISHED]
    open_delivery = sa.exists().where(
        deliveries.c.message_id == messages.c.id, deliveries.c.status.in_(unfinished)
    )
    ids = list(connection.execute(
        sa.select(messages.c.id)
        .where(messages.c.received_at < to_db_time(older_than),
               messages.c.status.not_in(unfinished), ~open_delivery)
        .limit(PRUNE_BATCH)
    ).scalars())
    if not ids:
        return 0
    # Children first, explicitly: the same statements on every backend, no reliance on
    # ON DELETE CASCADE being enforced.
    delivery_ids = sa.select(deliveries.c.id).where(deliveries.c.message_id.in_(ids))
    connection.execute(attempts.delete().where(attempts.c.delivery_id.in_(delivery_ids)))
    connection.execute(stages.delete().where(stages.c.message_id.in_(ids)))
    connection.execute(business_keys.delete().where(business_keys.c.message_id.in_(ids)))
    connection.execute(deliveries.delete().where(deliveries.c.message_id.in_(ids)))
    connection.execute(messages.delete().where(messages.c.id.in_(ids)))
    return len(ids)
