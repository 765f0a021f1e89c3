"""Tables of the message store (SQLAlchemy Core). Alembic migrations mirror this module.

A message is one unit of work from a source. Each destination it is routed to gets a
delivery row (fan-out: one failing subscriber never holds back the others). Every attempt
at a delivery is its own row; every stage's content is its own row, appended, never updated.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

messages = Table(
    "messages",
    metadata,
    Column("id", String(26), primary_key=True, comment="time-sortable id"),
    Column("channel", String(100), nullable=False),
    Column("source", String(100), nullable=False),
    Column("correlation_key", String(200)),
    Column("parent_id", String(26), comment="the message this one replays"),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    Column("party", String(20)),
    Column("rule_id", String(200)),
    Column("reason", Text),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_messages_channel_received", "channel", "received_at"),
    Index("ix_messages_status", "status"),
    Index("ix_messages_correlation", "correlation_key"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("message_id", String(26), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("destination", String(100), nullable=False),
    Column("delivery", String(10), nullable=False, comment="sync | async"),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("claimed_by", String(100)),
    Column("claimed_until", DateTime(timezone=True)),
    Column("party", String(20)),
    Column("rule_id", String(200)),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_deliveries_message", "message_id"),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    Index("ix_deliveries_destination_status", "destination", "status"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("delivery_id", ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("outcome", String(30), nullable=False,
           comment="ok | transient | permanent | unknown | short_circuited | input | engine"),
    Column("http_status", Integer),
    Column("ack_code", String(10)),
    Column("error", Text),
    Column("party", String(20)),
    Column("rule_id", String(200)),
    Column("replay_of", String(26), comment="original message id when this attempt is a replay"),
    Index("ix_attempts_delivery", "delivery_id"),
)

stages = Table(
    "stages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("message_id", String(26), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("delivery_id", ForeignKey("deliveries.id", ondelete="CASCADE")),
    Column("attempt", Integer, comment="attempt number for wire stages"),
    Column("step", Integer, nullable=False, default=0, comment="wire step within an attempt"),
    Column("name", String(30), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("headers", JSON),
    Column("body", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_stages_message", "message_id"),
    # Deleting a delivery makes the database look for its stages; without this index that
    # is a full scan of the largest table for every delivery pruned.
    Index("ix_stages_delivery", "delivery_id"),
)

business_keys = Table(
    "business_keys",
    metadata,
    Column("message_id", String(26), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(50), primary_key=True),
    Column("value", String(200), primary_key=True),
    Index("ix_business_keys_lookup", "name", "value"),
)

breaker_events = Table(
    "breaker_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("breaker", String(100), nullable=False),
    Column("old_state", String(20), nullable=False),
    Column("new_state", String(20), nullable=False),
    Column("reason", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_breaker_events_breaker_at", "breaker", "at"),
)

suspensions = Table(
    "suspensions",
    metadata,
    Column("breaker", String(100), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("suspended_by", String(100), nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
)

payload_reads = Table(
    "payload_reads",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("who", String(100), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("message_id", String(26), nullable=False),
    Column("action", String(30), nullable=False, comment="show | diff | api"),
    Column("remote", String(100), comment="client address or 'cli'"),
    Index("ix_payload_reads_message", "message_id"),
)

blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String(64), primary_key=True, comment="hex SHA-256 of data: the blob's key"),
    Column("content_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False, comment="bytes"),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Pruning looks for blobs stored before its cutoff.
    Index("ix_blobs_created_at", "created_at"),
)
