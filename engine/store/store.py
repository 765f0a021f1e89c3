"""MessageStore: the async API the pipeline, outbox, API and CLI use.

Writes go through one group-committing writer thread (engine.store.writer) so many concurrent
messages share each commit and fsync; every awaited write returns only after its transaction
is durably committed. Reads run on pooled connections in worker threads.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
import structlog

from engine.business_keys import KeysOut, merge, normalise
from engine.errors import StoreError
from engine.message import Payload, Status, Verdict
from engine.store import blobs, reads, writes
from engine.store.call_record import RecordCall
from engine.store.database import DEFAULT_URL, create_store_engine, utc_now
from engine.store.migrate import migrate as migrate_schema
from engine.store.records import (
    AttemptRecord,
    AttemptWrite,
    ClaimedDelivery,
    DeliveryUpdate,
    MessageView,
    NewMessage,
    StageRecord,
)
from engine.store.writer import DEFAULT_MAX_GROUP, GroupWriter

log = structlog.get_logger(__name__)

T = TypeVar("T")


class MessageStore:
    """All reads and writes. Writes go through one group-committing writer so many
    concurrent messages share each commit (and fsync); every `await` on a write returns
    only after its transaction is durably committed."""

    def __init__(self, url: str, *, max_group: int = DEFAULT_MAX_GROUP) -> None:
        self.url = url
        self._reader = create_store_engine(url, "reader")
        self._writer = GroupWriter(create_store_engine(url, "writer"), max_group=max_group)

    @classmethod
    async def open(cls, url: str = DEFAULT_URL, *, migrate: bool = True) -> MessageStore:
        """Connect (SQLite: WAL mode, synchronous=FULL, parent directory created) and bring
        the schema to the newest Alembic revision when `migrate`."""
        if migrate:
            await migrate_schema(url)
        return cls(url)

    @property
    def write_engine(self) -> sa.Engine:
        """The writer's engine (for instrumentation such as counting commits)."""
        return self._writer.engine

    async def close(self) -> None:
        await self._writer.close()
        self._writer.engine.dispose()
        self._reader.dispose()

    async def _write(self, run: Callable[[sa.Connection], T], *, early: bool = False) -> T:
        result: T = await self._writer.submit(run, early=early)
        return result

    async def flush(self) -> None:
        """Wait until every write submitted so far is committed (a sync reply's record is
        written without waiting for its commit; a read after it must still see it)."""
        await self._writer.submit(_nothing)

    async def _read(self, run: Callable[[sa.Connection], T]) -> T:
        await self.flush()

        def in_thread() -> T:
            with self._reader.connect() as connection:
                return run(connection)

        try:
            return await asyncio.to_thread(in_thread)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"store read failed: {exc}") from exc

    # --- writes -------------------------------------------------------------------------

    async def create_message(self, message: NewMessage, *, wait: bool = True) -> dict[str, int]:
        """Insert the message, its raw stage, business keys and one delivery row per
        destination in one transaction. Returns {destination: delivery_id}.

        With `wait=False` this returns as soon as the writer has executed the inserts (the
        ids are then known) and the commit follows with the rest of the group. A write the
        same caller awaits afterwards commits in the same or a later group, so awaiting it
        proves this one committed too."""
        return await self._write(writes.CreateMessage(message), early=not wait)

    async def record_attempt(
        self,
        attempt: AttemptRecord,
        stages: Iterable[StageRecord],
        update: DeliveryUpdate,
        *,
        message_status: Status | None = None,
        message_verdict: Verdict | None = None,
        business_keys: KeysOut | None = None,
        message_id: str,
        wait: bool = True,
    ) -> None:
        """Append one attempt with its stages, move the delivery to its new state, and
        (when given) set the message's overall status/verdict, in one transaction.
        With `wait=False` it returns once executed; the commit follows with its group."""
        write = AttemptWrite(attempt, list(stages), update, message_status, message_verdict)
        await self._write(_record_attempt(message_id, write, business_keys), early=not wait)

    async def record_attempts(self, message_id: str, attempts: list[AttemptWrite], *, wait: bool = True) -> None:
        """Several attempts of one delivery run (retries) in one transaction, in order: the
        delivery goes straight to its final state, never through a moment in which a
        non-final attempt has released the outbox lease."""
        records = [_record_attempt(message_id, write) for write in attempts]
        await self._write(functools.partial(writes.RecordAttempt.run_together, records=records), early=not wait)

    def record_call(self, message: NewMessage, destination: str, attempts: list[AttemptWrite]) -> None:
        """Queue a finished sync call (message, delivery, attempts) as one write without
        waiting for it; see `engine.store.call_record`. A failure is logged by the writer."""
        future = self._writer.enqueue(RecordCall(
            writes.CreateMessage(message), destination,
            [_record_attempt(message.id, write) for write in attempts],
        ))
        future.add_done_callback(_log_lost_write)

    async def add_stages(self, message_id: str, stages: Iterable[StageRecord]) -> None:
        await self._write(functools.partial(writes.insert_stages, message_id=message_id,
                                            records=list(stages)))

    async def set_message_status(
        self, message_id: str, status: Status, verdict: Verdict | None = None
    ) -> None:
        """Set the message's status and verdict (a None verdict clears the old one)."""
        await self._write(functools.partial(writes.set_message_status, message_id=message_id,
                                            status=status, verdict=verdict))

    # --- outbox -------------------------------------------------------------------------

    async def claim_due(
        self, worker: str, *, limit: int, lease_seconds: float, now: datetime | None = None,
        destinations: Iterable[str] | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to `limit` queued async deliveries whose next_attempt_at is due (or whose
        lease expired). Safe with several processes on PostgreSQL (FOR UPDATE SKIP LOCKED)
        and on SQLite (the writer's BEGIN IMMEDIATE serialises claims)."""
        return await self._write(functools.partial(
            writes.claim_due, worker=worker, limit=limit, lease_seconds=lease_seconds,
            now=now or utc_now(), destinations=None if destinations is None else list(destinations),
        ))

    async def release(self, delivery_id: int, *, next_attempt_at: datetime) -> None:
        """Give a claimed delivery back without an attempt (its breaker is open)."""
        await self._write(functools.partial(writes.release, delivery_id=delivery_id,
                                            next_attempt_at=next_attempt_at))

    async def expedite(self, destinations: Iterable[str]) -> int:
        """Make queued deliveries to `destinations` due now, whatever their backoff said:
        called when their breaker closes, so the backlog drains at once."""
        return await self._write(functools.partial(
            writes.expedite, destinations=list(destinations), now=utc_now()))

    async def requeue_expired_claims(self, *, now: datetime | None = None) -> int:
        """Clear every lease that has run out; returns how many were cleared."""
        return await self._write(functools.partial(writes.requeue_expired_claims,
                                                   now=now or utc_now()))

    async def queue_depths(self) -> dict[str, tuple[int, float]]:
        """{destination: (queued count, age in seconds of the oldest queued delivery)}."""
        return await self._read(reads.queue_depths)

    # --- breakers and suspensions -------------------------------------------------------

    async def record_breaker_event(self, breaker: str, old: str, new: str, reason: str) -> None:
        await self._write(functools.partial(writes.record_breaker_event, breaker=breaker,
                                            old=old, new=new, reason=reason))

    async def suspend(self, breaker: str, *, reason: str, by: str) -> None:
        await self._write(functools.partial(writes.suspend, breaker=breaker, reason=reason,
                                            by=by))

    async def resume(self, breaker: str) -> bool:
        return await self._write(functools.partial(writes.resume, breaker=breaker))

    async def suspensions(self) -> dict[str, dict[str, Any]]:
        """{breaker: {reason, suspended_by, since}}"""
        return await self._read(reads.suspension_rows)

    async def last_breaker_events(self) -> dict[str, dict[str, Any]]:
        """{breaker: {old_state, new_state, reason, at}} of each breaker's newest transition."""
        return await self._read(reads.last_breaker_events)

    # --- reads --------------------------------------------------------------------------

    async def get_message(self, message_id: str, *, with_stages: bool = False) -> MessageView | None:
        """The message with deliveries and their attempt rows; with `with_stages`, also every
        stage as {name, destination, attempt, step, content_type, headers, body, created_at}."""
        return await self._read(functools.partial(reads.get_message, message_id=message_id,
                                                  with_stages=with_stages))

    async def get_stage(self, message_id: str, name: str, *, delivery: str | None = None,
                        attempt: int | None = None) -> Payload | None:
        """The newest stage of that name (optionally for one destination / attempt)."""
        return await self._read(functools.partial(
            reads.get_stage, message_id=message_id, name=name, delivery=delivery,
            attempt=attempt,
        ))

    async def list_messages(
        self, *, channel: str | None = None, status: str | None = None, party: str | None = None,
        since: datetime | None = None, until: datetime | None = None,
        key: tuple[str, str] | None = None, limit: int = 50,
    ) -> list[MessageView]:
        """Newest first; `since` inclusive, `until` exclusive; `key` = (name, value)."""
        return await self._read(functools.partial(
            reads.list_messages, channel=channel, status=status, party=party, since=since,
            until=until, key=key, limit=limit,
        ))

    async def find_by_key(self, name: str, value: str) -> list[str]:
        """Ids of the messages carrying business key name=value, oldest first."""
        return await self._read(functools.partial(reads.find_by_key, name=name, value=value))

    async def stats(self, *, since: datetime) -> dict[str, Any]:
        """{"volume": [{channel, hour, received, failed}], "failures": [{channel, party, count}]}"""
        return await self._read(functools.partial(reads.stats, since=since))

    async def audit_read(self, *, who: str, message_id: str, action: str, remote: str) -> None:
        await self._write(functools.partial(writes.audit_read, who=who, message_id=message_id,
                                            action=action, remote=remote))

    async def prune(self, *, older_than: datetime) -> int:
        """Delete finished messages received before `older_than`; never queued/unfinished ones.
        Runs in batches so the writer keeps serving other writes in between."""
        total = 0
        while True:
            deleted = await self._write(functools.partial(writes.prune_batch,
                                                          older_than=older_than))
            total += deleted
            if deleted < writes.PRUNE_BATCH:
                break
        log.info("store pruned", messages=total)
        return total

    # --- blobs (attachments stored once; see engine.store.blobs) ------------------------

    async def put_blob(self, data: bytes, content_type: str) -> str:
        """Store `data` once, keyed by its SHA-256, and return its reference
        `blob:sha256:<hex>` (the same bytes again store nothing and give the same reference).
        Returns after the commit. A message using it should carry the reference as business
        key `blob` (engine.store.blobs.BLOB_KEY), which keeps the blob from being pruned."""
        return await self._write(blobs.PutBlob(data, content_type))

    async def get_blob(self, ref: str) -> blobs.Blob | None:
        """The blob behind a reference, or None; `BlobRefError` when `ref` is not a reference."""
        blobs.digest_of(ref)
        return await self._read(functools.partial(blobs.get_blob, ref=ref))

    async def message_blob_refs(self, message_id: str) -> list[str]:
        """The blob references a message names (its business key `blob`)."""
        return await self._read(functools.partial(blobs.blob_refs, message_id=message_id))

    async def prune_blobs(self, *, older_than: datetime) -> int:
        """Delete blobs stored before `older_than` that no stored message names; in batches."""
        total = 0
        while True:
            deleted = await self._write(functools.partial(blobs.prune_batch, older_than=older_than))
            total += deleted
            if deleted < blobs.PRUNE_BATCH:
                break
        if total:
            log.info("store pruned blobs", blobs=total)
        return total


def _nothing(connection: sa.Connection) -> None:
    """A write that writes nothing: awaiting it awaits the commit of everything before it."""


def _record_attempt(
    message_id: str, write: AttemptWrite, business_keys: KeysOut | None = None
) -> writes.RecordAttempt:
    return writes.RecordAttempt(
        message_id=message_id, attempt=write.attempt, stage_records=write.stages,
        update=write.update, message_status=write.message_status,
        message_verdict=write.message_verdict,
        keys=merge(normalise(write.keys), normalise(business_keys or {})),
    )


def _log_lost_write(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a finished call could not be stored", error=str(future.exception()))
