"""The first message store schema: messages, deliveries, attempts, stages, business keys,
breaker events, suspensions, payload reads.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.String(26), primary_key=True, comment="time-sortable id"),
        sa.Column("channel", sa.String(100), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("correlation_key", sa.String(200)),
        sa.Column("parent_id", sa.String(26), comment="the message this one replays"),
        sa.Column("received_at", MOMENT, nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("party", sa.String(20)),
        sa.Column("rule_id", sa.String(200)),
        sa.Column("reason", sa.Text()),
        sa.Column("finished_at", MOMENT),
    )
    op.create_index("ix_messages_channel_received", "messages", ["channel", "received_at"])
    op.create_index("ix_messages_status", "messages", ["status"])
    op.create_index("ix_messages_correlation", "messages", ["correlation_key"])

    op.create_table(
        "deliveries",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(26),
                  sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("destination", sa.String(100), nullable=False),
        sa.Column("delivery", sa.String(10), nullable=False, comment="sync | async"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", MOMENT),
        sa.Column("claimed_by", sa.String(100)),
        sa.Column("claimed_until", MOMENT),
        sa.Column("party", sa.String(20)),
        sa.Column("rule_id", sa.String(200)),
        sa.Column("reason", sa.Text()),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("updated_at", MOMENT, nullable=False),
    )
    op.create_index("ix_deliveries_message", "deliveries", ["message_id"])
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_deliveries_destination_status", "deliveries", ["destination", "status"])

    op.create_table(
        "attempts",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", SERIAL,
                  sa.ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", MOMENT, nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(30), nullable=False,
                  comment="ok | transient | permanent | unknown | short_circuited | input | engine"),
        sa.Column("http_status", sa.Integer()),
        sa.Column("ack_code", sa.String(10)),
        sa.Column("error", sa.Text()),
        sa.Column("party", sa.String(20)),
        sa.Column("rule_id", sa.String(200)),
        sa.Column("replay_of", sa.String(26),
                  comment="original message id when this attempt is a replay"),
    )
    op.create_index("ix_attempts_delivery", "attempts", ["delivery_id"])

    op.create_table(
        "stages",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(26),
                  sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("delivery_id", SERIAL, sa.ForeignKey("deliveries.id", ondelete="CASCADE")),
        sa.Column("attempt", sa.Integer(), comment="attempt number for wire stages"),
        sa.Column("step", sa.Integer(), nullable=False, comment="wire step within an attempt"),
        sa.Column("name", sa.String(30), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("headers", sa.JSON()),
        sa.Column("body", sa.LargeBinary()),
        sa.Column("created_at", MOMENT, nullable=False),
    )
    op.create_index("ix_stages_message", "stages", ["message_id"])
    op.create_index("ix_stages_delivery", "stages", ["delivery_id"])

    op.create_table(
        "business_keys",
        sa.Column("message_id", sa.String(26),
                  sa.ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("value", sa.String(200), primary_key=True),
    )
    op.create_index("ix_business_keys_lookup", "business_keys", ["name", "value"])

    op.create_table(
        "breaker_events",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("breaker", sa.String(100), nullable=False),
        sa.Column("old_state", sa.String(20), nullable=False),
        sa.Column("new_state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("at", MOMENT, nullable=False),
    )
    op.create_index("ix_breaker_events_breaker_at", "breaker_events", ["breaker", "at"])

    op.create_table(
        "suspensions",
        sa.Column("breaker", sa.String(100), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("suspended_by", sa.String(100), nullable=False),
        sa.Column("since", MOMENT, nullable=False),
    )

    op.create_table(
        "payload_reads",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("who", sa.String(100), nullable=False),
        sa.Column("at", MOMENT, nullable=False),
        sa.Column("message_id", sa.String(26), nullable=False),
        sa.Column("action", sa.String(30), nullable=False, comment="show | diff | api"),
        sa.Column("remote", sa.String(100), comment="client address or 'cli'"),
    )
    op.create_index("ix_payload_reads_message", "payload_reads", ["message_id"])


def downgrade() -> None:
    for table in ("payload_reads", "suspensions", "breaker_events", "business_keys", "stages",
                  "attempts", "deliveries", "messages"):
        op.drop_table(table)
