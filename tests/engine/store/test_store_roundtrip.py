"""Messages, stages, attempts, statuses and reads round-trip through the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.errors import StoreError
from engine.message import Delivery, Party, Payload, StageName, Status, Verdict
from engine.store import MessageStore
from engine.store.records import AttemptRecord, DeliveryUpdate, NewMessage, StageRecord
from engine.store.schema import payload_reads

VERDICT = Verdict(Party.THIRD_PARTY, "yibao.error_text", "centre said no", "call the centre")


async def test_message_with_raw_stage_and_keys_round_trips(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    message = new_message(
        destinations={"yibao": Delivery.SYNC, "drug_trace": Delivery.ASYNC},
        keys={"setl_id": "S-1001", "psn_no": "P0001"},
        raw=Payload(b"\x00raw bytes\xff", "application/octet-stream", {"X-Caller": "cashier-3"}),
    )
    ids = await store.create_message(message)
    assert set(ids) == {"yibao", "drug_trace"}

    view = await store.get_message(message.id, with_stages=True)
    assert view is not None
    assert view.channel == "yibao_settle"
    assert view.status == "received"
    assert view.received_at == message.received_at
    assert view.business_keys == {"setl_id": "S-1001", "psn_no": "P0001"}
    assert {(d.destination, d.delivery, d.status, d.id) for d in view.deliveries} == {
        ("yibao", "sync", "received", ids["yibao"]),
        ("drug_trace", "async", "queued", ids["drug_trace"]),
    }
    [raw] = view.stages
    assert raw["name"] == "raw" and raw["destination"] is None
    assert raw["body"] == b"\x00raw bytes\xff"
    assert raw["headers"] == {"X-Caller": "cashier-3"}
    assert raw["content_type"] == "application/octet-stream"
    assert raw["created_at"].tzinfo is not None


async def test_metadata_only_message_stores_no_raw_stage(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    message = new_message()
    message = NewMessage(**{**message.__dict__, "raw": None})
    await store.create_message(message)
    view = await store.get_message(message.id, with_stages=True)
    assert view is not None and view.stages == []
    assert await store.get_stage(message.id, "raw") is None


async def test_attempt_with_stages_updates_delivery_and_message(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    message = new_message()
    ids = await store.create_message(message, wait=False)
    started = datetime.now(UTC)
    sent = Payload.from_json({"infno": "2207", "input": {"psn_no": "P0001"}},
                             headers={"x-tif-signature": "abc"})
    reply = Payload.from_json({"infcode": -1, "err_msg": "centre said no"})
    await store.record_attempt(
        AttemptRecord(ids["yibao"], 1, started, 12.5, "permanent", http_status=200,
                      error="centre said no", verdict=VERDICT),
        [StageRecord(StageName.SENT, sent, ids["yibao"], 1),
         StageRecord(StageName.RESPONSE_RAW, reply, ids["yibao"], 1)],
        DeliveryUpdate(ids["yibao"], Status.FAILED, 1, VERDICT),
        message_status=Status.FAILED, message_verdict=VERDICT,
        business_keys={"setl_id": "S-2"}, message_id=message.id,
    )
    view = await store.get_message(message.id, with_stages=True)
    assert view is not None
    assert (view.status, view.party, view.rule_id) == ("failed", "third_party", "yibao.error_text")
    assert view.business_keys == {"setl_id": "S-2"}
    [delivery] = view.deliveries
    assert (delivery.status, delivery.attempts, delivery.party) == ("failed", 1, "third_party")
    [attempt] = delivery.attempt_rows
    assert attempt["outcome"] == "permanent" and attempt["duration_ms"] == 12.5
    assert attempt["started_at"] == started and attempt["party"] == "third_party"
    assert [(s["name"], s["destination"], s["attempt"]) for s in view.stages] == [
        ("raw", None, None), ("sent", "yibao", 1), ("response_raw", "yibao", 1)]

    assert await store.get_stage(message.id, "sent", delivery="yibao", attempt=1) == sent
    assert await store.get_stage(message.id, "sent", delivery="other") is None
    assert await store.get_stage(message.id, "response_raw") == reply


async def test_stages_are_appended_and_the_newest_wins(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    message = new_message()
    ids = await store.create_message(message)
    first = Payload.from_json({"v": 1})
    second = Payload.from_json({"v": 2})
    await store.add_stages(message.id, [StageRecord(StageName.TRANSFORMED, first, ids["yibao"])])
    await store.add_stages(message.id, [StageRecord(StageName.TRANSFORMED, second, ids["yibao"])])
    assert await store.get_stage(message.id, "transformed") == second
    view = await store.get_message(message.id, with_stages=True)
    assert view is not None
    assert [s["body"] for s in view.stages if s["name"] == "transformed"] == [
        first.body, second.body]


async def test_set_message_status_sets_and_clears_the_verdict(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    message = new_message()
    await store.create_message(message)
    await store.set_message_status(message.id, Status.SHORT_CIRCUITED, VERDICT)
    view = await store.get_message(message.id)
    assert view is not None and (view.status, view.reason) == ("short_circuited", "centre said no")
    await store.set_message_status(message.id, Status.REPLIED)
    view = await store.get_message(message.id)
    assert view is not None and (view.status, view.party, view.reason) == ("replied", None, None)


async def test_list_messages_filters_and_is_newest_first(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    base = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    old = new_message(received_at=base, keys={"setl_id": "S-1"})
    middle = new_message(channel="lis_results", received_at=base + timedelta(hours=1))
    new = new_message(received_at=base + timedelta(hours=2), keys={"setl_id": "S-1"})
    for message in (old, middle, new):
        await store.create_message(message)
    await store.set_message_status(new.id, Status.FAILED, VERDICT)

    listed = await store.list_messages()
    assert [m.id for m in listed] == [new.id, middle.id, old.id]
    assert [m.id for m in await store.list_messages(channel="yibao_settle")] == [new.id, old.id]
    assert [m.id for m in await store.list_messages(status="failed")] == [new.id]
    assert [m.id for m in await store.list_messages(party="third_party")] == [new.id]
    assert [m.id for m in await store.list_messages(key=("setl_id", "S-1"))] == [new.id, old.id]
    assert [m.id for m in await store.list_messages(
        since=base + timedelta(minutes=30), until=base + timedelta(hours=2))] == [middle.id]
    assert [m.id for m in await store.list_messages(limit=1)] == [new.id]
    assert await store.find_by_key("setl_id", "S-1") == [old.id, new.id]
    assert listed[0].deliveries[0].destination == "yibao"


async def test_get_message_of_unknown_id_is_none(store: MessageStore) -> None:
    assert await store.get_message("0" * 26) is None


async def test_set_status_of_unknown_message_is_a_store_error(store: MessageStore) -> None:
    with pytest.raises(StoreError):
        await store.set_message_status("0" * 26, Status.SENT)


async def test_suspensions_and_breaker_events(store: MessageStore) -> None:
    await store.suspend("yibao", reason="centre maintenance 22:00-24:00", by="ops1")
    first = (await store.suspensions())["yibao"]
    await store.suspend("yibao", reason="extended to 02:00", by="ops2")
    again = (await store.suspensions())["yibao"]
    assert (again["reason"], again["suspended_by"]) == ("extended to 02:00", "ops2")
    assert again["since"] == first["since"]
    assert await store.resume("yibao") is True
    assert await store.resume("yibao") is False
    assert await store.suspensions() == {}
    await store.record_breaker_event("yibao", "closed", "open", "5 failures in a row")


async def test_audit_read_is_recorded(store: MessageStore, db_url: str) -> None:
    await store.audit_read(who="ops1", message_id="0" * 26, action="show", remote="cli")
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(payload_reads.c.who, payload_reads.c.action)).all()
    finally:
        engine.dispose()
    assert rows == [("ops1", "show")]
