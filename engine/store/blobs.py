"""Blobs: large attachments (a report's PDF, an image) stored once, by content, and referenced.

A blob's key is the SHA-256 of its bytes; its reference, the text that stages, replies and
business keys carry instead of the bytes, is `blob:sha256:<64 hex digits>`. Storing the same
bytes again stores nothing new and returns the same reference, so a report whose PDF passes
through four stages (raw, processed, transformed, sent) holds it once.

Which messages use a blob is recorded through the business key `blob` (`BLOB_KEY`): an
adapter that puts a blob's reference into a message names it in `extract_keys`, and the
indexed business-key table then answers "who references this?". Pruning rule
(`prune_batch`): a blob is deleted only when it was stored before the cutoff AND no stored
message carries it as business key `blob`. A blob stored moments before its message is
created (the usual order) is therefore never lost to a prune running in between, and a
message that outlives the retention period (still queued) keeps its blobs.

These are write and read functions for the store's group-commit writer and reader pool,
like engine.store.writes and engine.store.reads; `MessageStore.put_blob` and friends are
the public API.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.store.database import from_db_time, to_db_time, utc_now
from engine.store.schema import blobs, business_keys

BLOB_KEY = "blob"
"""Business-key name under which a message lists the blob references it uses."""

REF_PREFIX = "blob:sha256:"
PRUNE_BATCH = 200
_REF = re.compile(r"^blob:sha256:([0-9a-f]{64})$")
_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")


class BlobRefError(ValueError):
    """Text that is not a blob reference (`blob:sha256:<64 lowercase hex digits>`)."""


@dataclass(frozen=True)
class Blob:
    ref: str
    content_type: str
    size: int
    data: bytes
    created_at: datetime


def blob_ref(data: bytes) -> str:
    """The reference the store gives these bytes (without storing them)."""
    return REF_PREFIX + hashlib.sha256(data).hexdigest()


def digest_of(ref: str) -> str:
    """The hex digest inside a reference; `BlobRefError` when `ref` is not one."""
    match = _REF.match(ref)
    if match is None:
        raise BlobRefError(f"not a blob reference: {ref[:80]!r} (expected {REF_PREFIX}<64 hex digits>)")
    return match.group(1)


def is_blob_ref(text: str) -> bool:
    return _REF.match(text) is not None


class PutBlob:
    """Write operation: store `data` under its digest unless it is there already; returns the ref."""

    def __init__(self, data: bytes, content_type: str) -> None:
        if not _CONTENT_TYPE.match(content_type):
            raise ValueError(f"not a content type: {content_type!r}")
        self.data = data
        self.content_type = content_type
        self.ref = blob_ref(data)

    def __call__(self, connection: sa.Connection) -> str:
        row = {
            "sha256": digest_of(self.ref),
            "content_type": self.content_type,
            "size": len(self.data),
            "data": self.data,
            "created_at": utc_now(),
        }
        connection.execute(_insert_blob(connection.dialect.name), row)
        return self.ref


@functools.cache
def _insert_blob(dialect: str) -> sa.Insert:
    # The first content type stored for some bytes stays: the same bytes are the same file.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(blobs).on_conflict_do_nothing(index_elements=[blobs.c.sha256])


def get_blob(connection: sa.Connection, ref: str) -> Blob | None:
    row = connection.execute(sa.select(blobs).where(blobs.c.sha256 == digest_of(ref))).first()
    if row is None:
        return None
    created_at = from_db_time(row.created_at)
    assert created_at is not None  # the column is NOT NULL
    return Blob(ref, row.content_type, row.size, bytes(row.data), created_at)


def blob_refs(connection: sa.Connection, message_id: str) -> list[str]:
    """The blob references a message carries as business key `blob`, in stored order."""
    return list(connection.execute(
        sa.select(business_keys.c.value)
        .where(business_keys.c.message_id == message_id, business_keys.c.name == BLOB_KEY)
    ).scalars())


def prune_batch(connection: sa.Connection, older_than: datetime) -> int:
    """Delete up to PRUNE_BATCH blobs stored before `older_than` that no message names."""
    referenced = sa.exists().where(
        business_keys.c.name == BLOB_KEY,
        business_keys.c.value == sa.literal(REF_PREFIX) + blobs.c.sha256,
    )
    digests = list(connection.execute(
        sa.select(blobs.c.sha256)
        .where(blobs.c.created_at < to_db_time(older_than), ~referenced)
        .limit(PRUNE_BATCH)
    ).scalars())
    if digests:
        connection.execute(blobs.delete().where(blobs.c.sha256.in_(digests)))
    return len(digests)


__all__ = [
    "BLOB_KEY",
    "PRUNE_BATCH",
    "REF_PREFIX",
    "Blob",
    "BlobRefError",
    "PutBlob",
    "blob_ref",
    "blob_refs",
    "digest_of",
    "get_blob",
    "is_blob_ref",
    "prune_batch",
]
