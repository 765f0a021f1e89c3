"""A sync call written after the fact, in one operation nobody waits for.

Sync calls to a destination that is safe to repeat (and every call refused by an open
breaker) are written once they are over: the message, its raw stage, its delivery and every
attempt with its stages go to the writer together and commit with its next group. The
caller is answered without waiting on the disk; a read that follows flushes the writer
first, so it sees the call.
"""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from engine.store.writes import CreateMessage, RecordAttempt


class RecordCall:
    def __init__(self, create: CreateMessage, destination: str, attempts: list[RecordAttempt]) -> None:
        self.create = create
        self.destination = destination
        self.attempts = attempts

    def __call__(self, connection: sa.Connection) -> None:
        delivery_id = self.create(connection)[self.destination]
        RecordAttempt.run_together(connection, [_for_delivery(a, delivery_id) for a in self.attempts])


def _for_delivery(record: RecordAttempt, delivery_id: int) -> RecordAttempt:
    return RecordAttempt(
        message_id=record.message_id,
        attempt=replace(record.attempt, delivery_id=delivery_id),
        stage_records=[replace(stage, delivery_id=delivery_id) for stage in record.stage_records],
        update=replace(record.update, delivery_id=delivery_id),
        message_status=record.message_status,
        message_verdict=record.message_verdict,
        keys=record.keys,
    )
