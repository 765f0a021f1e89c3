"""Blobs: stored once by content, read back by reference, kept while a message names them.
Runs on SQLite and, with HISBRIDGE_TEST_DATABASE_URL, on PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from engine.message import Status
from engine.store import MessageStore
from engine.store.blobs import BLOB_KEY, BlobRefError, blob_ref, digest_of
from engine.store.records import NewMessage

PDF = b"%PDF-1.4\n% synthetic report\n" + bytes(range(256)) * 40
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 300


def blob_rows(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM blobs")).scalar_one())
    finally:
        engine.dispose()


async def test_a_blob_is_stored_once_and_read_back_by_reference(store: MessageStore, db_url: str) -> None:
    ref = await store.put_blob(PDF, "application/pdf")
    again = await store.put_blob(PDF, "application/pdf")

    assert ref == again == "blob:sha256:" + hashlib.sha256(PDF).hexdigest()
    assert blob_rows(db_url) == 1
    blob = await store.get_blob(ref)
    assert blob is not None
    assert (blob.data, blob.content_type, blob.size, blob.ref) == (PDF, "application/pdf", len(PDF), ref)


async def test_an_unknown_or_malformed_reference(store: MessageStore) -> None:
    assert await store.get_blob(blob_ref(b"never stored")) is None
    with pytest.raises(BlobRefError, match="not a blob reference"):
        await store.get_blob("sha256:abc")
    with pytest.raises(BlobRefError):
        digest_of("blob:sha256:" + "A" * 64)  # upper case is not what the store writes


async def test_a_content_type_must_look_like_one(store: MessageStore) -> None:
    with pytest.raises(ValueError, match="content type"):
        await store.put_blob(PDF, "pdf please")


async def test_concurrent_puts_of_the_same_bytes_store_one_row(store: MessageStore, db_url: str) -> None:
    refs = await asyncio.gather(*(store.put_blob(PNG, "image/png") for _ in range(10)))
    assert len(set(refs)) == 1
    assert blob_rows(db_url) == 1


async def test_pruning_keeps_blobs_a_message_names_and_new_ones(
    store: MessageStore, db_url: str, new_message: Callable[..., NewMessage]
) -> None:
    named = await store.put_blob(PDF, "application/pdf")
    orphan = await store.put_blob(PNG, "image/png")
    message = new_message(keys={BLOB_KEY: named}, status=Status.SENT)
    await store.create_message(message)

    assert await store.prune_blobs(older_than=datetime.now(UTC) - timedelta(days=1)) == 0  # both are new
    assert await store.prune_blobs(older_than=datetime.now(UTC) + timedelta(seconds=1)) == 1

    assert await store.get_blob(orphan) is None
    assert await store.get_blob(named) is not None
    assert await store.message_blob_refs(message.id) == [named]
    assert blob_rows(db_url) == 1


async def test_a_blob_goes_with_the_last_message_naming_it(
    store: MessageStore, new_message: Callable[..., NewMessage]
) -> None:
    ref = await store.put_blob(PDF, "application/pdf")
    old = datetime.now(UTC) - timedelta(days=60)
    await store.create_message(new_message(keys={BLOB_KEY: ref}, status=Status.SENT, received_at=old, destinations={}))
    later = datetime.now(UTC) + timedelta(seconds=1)

    assert await store.prune_blobs(older_than=later) == 0
    assert await store.prune(older_than=datetime.now(UTC) - timedelta(days=30)) == 1
    assert await store.prune_blobs(older_than=later) == 1
    assert await store.get_blob(ref) is None
