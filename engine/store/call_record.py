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
        self.run_together(connection, [self])

    @staticmethod
    def run_together(connection: sa.Connection, calls: list[RecordCall]) -> list[None]:
        """Consecutive calls in a group: one multi-row statement per table for all of them."""
        ids = CreateMessage.run_together(connection, [call.create for call in calls])
        RecordAttempt.run_together(connection, [
            _for_delivery(attempt, delivery_ids[call.destination])
            for call, delivery_ids in zip(calls, ids, strict=True) for attempt in call.attempts
        ])
        return [None for _ in calls]


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
