"""Outbox leases: claim due async deliveries once, let expired leases be claimed again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from engine.message import Delivery, Payload, StageName, Status
from engine.store import MessageStore
from engine.store.records import AttemptRecord, DeliveryUpdate, NewMessage, StageRecord

ASYNC_ONLY = {"drug_trace": Delivery.ASYNC}


async def test_claim_returns_due_async_deliveries_with_payloads(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    message = new_message(destinations={"yibao": Delivery.SYNC, "drug_trace": Delivery.ASYNC})
    ids = await store.create_message(message)
    transformed = Payload.from_json({"infno": "3505"})
    await store.add_stages(message.id, [
        StageRecord(StageName.TRANSFORMED, transformed, ids["drug_trace"])])

    [claimed] = await store.claim_due("w1", limit=10, lease_seconds=30)
    assert claimed.delivery_id == ids["drug_trace"]
    assert (claimed.message_id, claimed.channel, claimed.destination, claimed.attempts) == (
        message.id, "yibao_settle", "drug_trace", 0)
    assert claimed.received_at == message.received_at
    assert claimed.transformed == transformed
    assert claimed.raw == message.raw
    assert await store.claim_due("w2", limit=10, lease_seconds=30) == []


async def test_claim_without_transformed_stage_gives_raw_only(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    message = new_message(destinations=ASYNC_ONLY)
    await store.create_message(message)
    [claimed] = await store.claim_due("w1", limit=1, lease_seconds=30)
    assert claimed.transformed is None and claimed.raw == message.raw


async def test_expired_lease_is_claimed_again(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    await store.create_message(new_message(destinations=ASYNC_ONLY))
    now = datetime.now(UTC)
    [first] = await store.claim_due("w1", limit=5, lease_seconds=30, now=now)
    assert await store.claim_due("w2", limit=5, lease_seconds=30,
                                 now=now + timedelta(seconds=29)) == []
    [again] = await store.claim_due("w2", limit=5, lease_seconds=30,
                                    now=now + timedelta(seconds=31))
    assert again.delivery_id == first.delivery_id


async def test_requeue_expired_claims_clears_only_run_out_leases(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    for _ in range(2):
        await store.create_message(new_message(destinations=ASYNC_ONLY))
    now = datetime.now(UTC)
    await store.claim_due("w1", limit=1, lease_seconds=10, now=now)
    await store.claim_due("w1", limit=1, lease_seconds=100, now=now)
    assert await store.requeue_expired_claims(now=now + timedelta(seconds=50)) == 1


async def test_release_returns_delivery_for_later(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    await store.create_message(new_message(destinations=ASYNC_ONLY))
    now = datetime.now(UTC)
    [claimed] = await store.claim_due("w1", limit=1, lease_seconds=300, now=now)
    await store.release(claimed.delivery_id, next_attempt_at=now + timedelta(seconds=60))
    assert await store.claim_due("w1", limit=1, lease_seconds=300,
                                 now=now + timedelta(seconds=59)) == []
    assert len(await store.claim_due("w1", limit=1, lease_seconds=300,
                                     now=now + timedelta(seconds=61))) == 1


async def test_record_attempt_clears_claim_and_schedules_retry(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    message = new_message(destinations=ASYNC_ONLY)
    await store.create_message(message)
    now = datetime.now(UTC)
    [claimed] = await store.claim_due("w1", limit=1, lease_seconds=300, now=now)
    retry_at = now + timedelta(seconds=5)
    await store.record_attempt(
        AttemptRecord(claimed.delivery_id, 1, now, 3.0, "transient", error="timeout"), [],
        DeliveryUpdate(claimed.delivery_id, Status.QUEUED, 1, next_attempt_at=retry_at),
        message_id=message.id,
    )
    assert await store.claim_due("w2", limit=1, lease_seconds=300,
                                 now=now + timedelta(seconds=4)) == []
    [retried] = await store.claim_due("w2", limit=1, lease_seconds=300,
                                      now=now + timedelta(seconds=6))
    assert retried.attempts == 1


async def test_claim_respects_limit_destinations_and_order(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    made = []
    for destination in ("drug_trace", "e_invoice", "drug_trace", "drug_trace"):
        ids = await store.create_message(new_message(destinations={destination: Delivery.ASYNC}))
        made.append((destination, ids[destination]))
    trace_ids = [i for d, i in made if d == "drug_trace"]
    first = await store.claim_due("w1", limit=2, lease_seconds=30, destinations=["drug_trace"])
    rest = await store.claim_due("w1", limit=5, lease_seconds=30, destinations=["drug_trace"])
    assert [c.delivery_id for c in first + rest] == trace_ids
    assert [c.destination for c in await store.claim_due("w1", limit=5, lease_seconds=30)] == [
        "e_invoice"]


async def test_queue_depths(store: MessageStore, new_message: Callable[..., NewMessage]) -> None:
    for destination in ("drug_trace", "drug_trace", "e_invoice"):
        await store.create_message(new_message(destinations={destination: Delivery.ASYNC}))
    await store.create_message(new_message())  # sync: never counted
    depths = await store.queue_depths()
    assert {name: count for name, (count, _) in depths.items()} == {
        "drug_trace": 2, "e_invoice": 1}
    assert all(age >= 0 for _, age in depths.values())
