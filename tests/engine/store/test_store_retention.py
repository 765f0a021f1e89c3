"""Pruning removes finished messages with everything they own, never unfinished ones;
stats count volume and failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.message import Delivery, Party, Payload, StageName, Status, Verdict
from engine.store import MessageStore, writes
from engine.store.records import AttemptRecord, DeliveryUpdate, NewMessage, StageRecord
from engine.store.schema import attempts, business_keys, deliveries, messages, stages

OLD = datetime(2026, 1, 1, tzinfo=UTC)
CUTOFF = OLD + timedelta(days=30)
VERDICT = Verdict(Party.NETWORK, "connect_refused", "connection refused")


async def finish(store: MessageStore, message: NewMessage, ids: dict[str, int]) -> None:
    for delivery_id in ids.values():
        await store.record_attempt(
            AttemptRecord(delivery_id, 1, message.received_at, 5.0, "ok"),
            [StageRecord(StageName.SENT, Payload(b"sent"), delivery_id, 1)],
            DeliveryUpdate(delivery_id, Status.SENT, 1), message_id=message.id,
        )
    await store.set_message_status(message.id, Status.SENT)


def row_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: connection.execute(sa.select(sa.func.count()).select_from(table))
                .scalar_one()
                for table in (messages, deliveries, attempts, stages, business_keys)
            }
    finally:
        engine.dispose()


async def test_prune_deletes_old_finished_messages_and_what_they_own(
    store: MessageStore, db_url: str, new_message: Callable[..., NewMessage]
) -> None:
    old_done = new_message(received_at=OLD, keys={"setl_id": "S-1"})
    await finish(store, old_done, await store.create_message(old_done))
    recent_done = new_message(received_at=CUTOFF + timedelta(days=1))
    await finish(store, recent_done, await store.create_message(recent_done))

    assert await store.prune(older_than=CUTOFF) == 1
    assert await store.get_message(old_done.id) is None
    assert await store.get_message(recent_done.id) is not None
    assert row_counts(db_url) == {"messages": 1, "deliveries": 1, "attempts": 1, "stages": 2,
                                  "business_keys": 0}


async def test_prune_never_deletes_unfinished_messages(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    received = new_message(received_at=OLD)
    await store.create_message(received)
    queued = new_message(received_at=OLD, destinations={"drug_trace": Delivery.ASYNC},
                         status=Status.QUEUED)
    await store.create_message(queued)
    # The message says failed, but one of its deliveries is still waiting in the outbox.
    half_done = new_message(received_at=OLD, destinations={
        "yibao": Delivery.SYNC, "drug_trace": Delivery.ASYNC})
    await store.create_message(half_done)
    await store.set_message_status(half_done.id, Status.FAILED, VERDICT)

    assert await store.prune(older_than=CUTOFF) == 0
    for message in (received, queued, half_done):
        assert await store.get_message(message.id) is not None


async def test_prune_works_through_many_batches(
    store: MessageStore, new_message: Callable[..., NewMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writes, "PRUNE_BATCH", 10)
    made = [new_message(received_at=OLD, status=Status.FILTERED, destinations={})
            for _ in range(25)]
    await asyncio.gather(*(store.create_message(message) for message in made))
    assert await store.prune(older_than=CUTOFF) == 25
    assert await store.list_messages() == []


async def test_stats_counts_volume_per_hour_and_failures_per_party(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    hour = datetime(2026, 5, 4, 9, tzinfo=UTC)
    for minutes, channel, failed in ((1, "yibao_settle", False), (59, "yibao_settle", True),
                                     (61, "yibao_settle", False), (5, "lis_results", True)):
        message = new_message(channel=channel, received_at=hour + timedelta(minutes=minutes))
        await store.create_message(message)
        if failed:
            await store.set_message_status(message.id, Status.FAILED, VERDICT)
    await store.create_message(new_message(received_at=hour - timedelta(hours=1)))

    stats = await store.stats(since=hour)
    assert stats["volume"] == [
        {"channel": "lis_results", "hour": hour, "received": 1, "failed": 1},
        {"channel": "yibao_settle", "hour": hour, "received": 2, "failed": 1},
        {"channel": "yibao_settle", "hour": hour + timedelta(hours=1), "received": 1,
         "failed": 0},
    ]
    assert stats["failures"] == [
        {"channel": "lis_results", "party": "network", "count": 1},
        {"channel": "yibao_settle", "party": "network", "count": 1},
    ]
