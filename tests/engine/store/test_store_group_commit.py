"""The writer groups concurrent writes into few commits and isolates a failing write."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import StoreError
from engine.message import Delivery, Payload, StageName, Status
from engine.store import MessageStore
from engine.store.records import AttemptRecord, DeliveryUpdate, NewMessage, StageRecord


def count_commits(store: MessageStore) -> list[int]:
    commits = [0]

    def on_commit(_connection: Any) -> None:
        commits[0] += 1

    sa.event.listen(store.write_engine, "commit", on_commit)
    return commits


class HeldWriter:
    """Blocks the writer thread so the writes queued meanwhile form one group."""

    def __init__(self, store: MessageStore) -> None:
        self._gate = threading.Event()
        self._blocker = asyncio.ensure_future(
            store._writer.submit(lambda _connection: self._gate.wait())
        )

    async def release(self) -> None:
        await asyncio.sleep(0)  # let the writes scheduled so far reach the queue
        self._gate.set()
        await self._blocker


async def test_concurrent_writes_share_commits(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    commits = count_commits(store)
    messages = [new_message() for _ in range(200)]
    results = await asyncio.gather(*(store.create_message(m) for m in messages))
    assert len(results) == 200
    assert commits[0] < 200 / 4
    assert len(await store.list_messages(limit=500)) == 200


async def test_failing_write_fails_only_its_caller(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    good = [new_message() for _ in range(20)]
    duplicate = good[3]  # same primary key: its insert fails inside the group
    held = HeldWriter(store)
    writes = asyncio.gather(
        *(store.create_message(m) for m in good[:10]),
        store.create_message(duplicate),
        *(store.create_message(m) for m in good[10:]),
        return_exceptions=True,
    )
    await held.release()
    outcomes = await writes
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], StoreError)
    assert isinstance(outcomes[10], StoreError)
    assert {m.id for m in await store.list_messages(limit=100)} == {m.id for m in good}


async def test_early_create_keeps_its_ids_when_its_group_is_rerun(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    early = new_message()
    bad = new_message()
    await store.create_message(bad)
    commits = count_commits(store)
    held = HeldWriter(store)
    writes = asyncio.gather(
        store.create_message(new_message(), wait=False),
        store.create_message(early, wait=False),
        store.create_message(bad),  # fails: the group is rolled back and rerun
        return_exceptions=True,
    )
    await held.release()
    outcomes = (await writes)[1:]
    assert commits[0] == 1 + 2  # the blocker's group, then the two good writes alone
    ids = outcomes[0]
    assert isinstance(ids, dict) and isinstance(outcomes[1], StoreError)
    view = await store.get_message(early.id)
    assert view is not None and view.deliveries[0].id == ids["yibao"]


async def test_one_callers_writes_commit_in_order(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    message = new_message()
    create = asyncio.ensure_future(store.create_message(message, wait=False))
    await create
    statuses = [Status.SENT, Status.FAILED, Status.REPLIED]
    await asyncio.gather(*(store.set_message_status(message.id, s) for s in statuses))
    view = await store.get_message(message.id)
    assert view is not None and view.status == "replied"


async def test_closed_store_refuses_writes(
    db_url: str, new_message: Callable[..., NewMessage]
) -> None:
    store = await MessageStore.open(db_url)
    await store.close()
    with pytest.raises(StoreError):
        await store.create_message(new_message())


async def test_creates_run_together_return_each_message_its_own_delivery_ids(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    fan_outs = [
        {"yibao": Delivery.SYNC},
        {"yibao": Delivery.SYNC, "drug_trace": Delivery.ASYNC, "e_invoice": Delivery.ASYNC},
        {},
        {"drug_trace": Delivery.ASYNC, "e_invoice": Delivery.ASYNC},
    ]
    messages = [new_message(destinations=fan_outs[n % len(fan_outs)], keys={"n": str(n)})
                for n in range(40)]
    held = HeldWriter(store)
    writes = asyncio.gather(*(store.create_message(m, wait=n % 2 == 0)
                              for n, m in enumerate(messages)))
    await held.release()
    for message, ids in zip(messages, await writes, strict=True):
        view = await store.get_message(message.id, with_stages=True)
        assert view is not None
        assert ids == {d.destination: d.id for d in view.deliveries}
        assert view.business_keys == message.business_keys
        assert [s["body"] for s in view.stages] == [message.raw.body]


async def test_attempts_run_together_and_a_bad_one_fails_alone(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    messages = [new_message() for _ in range(10)]
    delivery_ids = [(await store.create_message(m))["yibao"] for m in messages]
    now = datetime.now(UTC)

    def attempt(message: NewMessage, delivery_id: int, status: Status) -> Any:
        return store.record_attempt(
            AttemptRecord(delivery_id, 1, now, 1.0, "ok"),
            [StageRecord(StageName.SENT, Payload(message.id.encode()), delivery_id, 1)],
            DeliveryUpdate(delivery_id, status, 1), message_status=status,
            business_keys={"seq": message.id}, message_id=message.id,
        )

    held = HeldWriter(store)
    writes = asyncio.gather(
        *(attempt(m, d, Status.REPLIED) for m, d in zip(messages[:5], delivery_ids[:5], strict=True)),
        attempt(messages[5], 999_999, Status.REPLIED),  # no such delivery
        *(attempt(m, d, Status.SENT) for m, d in zip(messages[5:], delivery_ids[5:], strict=True)),
        return_exceptions=True,
    )
    await held.release()
    outcomes = await writes
    assert [isinstance(o, StoreError) for o in outcomes] == [False] * 5 + [True] + [False] * 5
    for n, message in enumerate(messages):
        view = await store.get_message(message.id, with_stages=True)
        assert view is not None
        assert view.status == ("replied" if n < 5 else "sent")
        assert view.business_keys == {"seq": message.id}
        assert [s["body"] for s in view.stages if s["name"] == "sent"] == [message.id.encode()]
        assert len(view.deliveries[0].attempt_rows) == 1
