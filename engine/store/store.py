"""MessageStore: the async API the pipeline, outbox, API and CLI use. (Skeleton: the
signatures are the contract; bodies are filled in by the store work.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from engine.message import Payload, Status, Verdict
from engine.store.records import (
    AttemptRecord,
    ClaimedDelivery,
    DeliveryUpdate,
    MessageView,
    NewMessage,
    StageRecord,
)


class MessageStore:
    """All reads and writes. Writes go through one group-committing writer so many
    concurrent messages share each commit (and fsync); every `await` on a write returns
    only after its transaction is durably committed."""

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> "MessageStore":
        """Connect (SQLite: WAL mode, synchronous=FULL, parent directory created) and bring
        the schema to the newest Alembic revision when `migrate`."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # --- writes -------------------------------------------------------------------------

    async def create_message(self, message: NewMessage, *, wait: bool = True) -> dict[str, int]:
        """Insert the message, its raw stage, business keys and one delivery row per
        destination in one transaction. Returns {destination: delivery_id}. With
        `wait=False` the ids are returned at once and the commit happens with the next group
        (used on the sync path, where the final write is awaited instead)."""
        raise NotImplementedError

    async def record_attempt(
        self,
        attempt: AttemptRecord,
        stages: Iterable[StageRecord],
        update: DeliveryUpdate,
        *,
        message_status: Status | None = None,
        message_verdict: Verdict | None = None,
        business_keys: dict[str, str] | None = None,
        message_id: str,
    ) -> None:
        """Append one attempt with its stages, move the delivery to its new state, and
        (when given) set the message's overall status/verdict, in one transaction."""
        raise NotImplementedError

    async def add_stages(self, message_id: str, stages: Iterable[StageRecord]) -> None:
        raise NotImplementedError

    async def set_message_status(
        self, message_id: str, status: Status, verdict: Verdict | None = None
    ) -> None:
        raise NotImplementedError

    # --- outbox -------------------------------------------------------------------------

    async def claim_due(
        self, worker: str, *, limit: int, lease_seconds: float, now: datetime | None = None,
        destinations: Iterable[str] | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to `limit` queued async deliveries whose next_attempt_at is due (or whose
        lease expired). Safe with several processes on PostgreSQL (FOR UPDATE SKIP LOCKED)."""
        raise NotImplementedError

    async def release(self, delivery_id: int, *, next_attempt_at: datetime) -> None:
        """Give a claimed delivery back without an attempt (its breaker is open)."""
        raise NotImplementedError

    async def requeue_expired_claims(self) -> int:
        raise NotImplementedError

    async def queue_depths(self) -> dict[str, tuple[int, float]]:
        """{destination: (queued count, age in seconds of the oldest queued delivery)}."""
        raise NotImplementedError

    # --- breakers and suspensions -------------------------------------------------------

    async def record_breaker_event(self, breaker: str, old: str, new: str, reason: str) -> None:
        raise NotImplementedError

    async def suspend(self, breaker: str, *, reason: str, by: str) -> None:
        raise NotImplementedError

    async def resume(self, breaker: str) -> bool:
        raise NotImplementedError

    async def suspensions(self) -> dict[str, dict[str, Any]]:
        """{breaker: {reason, suspended_by, since}}"""
        raise NotImplementedError

    # --- reads --------------------------------------------------------------------------

    async def get_message(self, message_id: str, *, with_stages: bool = False) -> MessageView | None:
        raise NotImplementedError

    async def get_stage(self, message_id: str, name: str, *, delivery: str | None = None,
                        attempt: int | None = None) -> Payload | None:
        """The newest stage of that name (optionally for one destination / attempt)."""
        raise NotImplementedError

    async def list_messages(
        self, *, channel: str | None = None, status: str | None = None, party: str | None = None,
        since: datetime | None = None, until: datetime | None = None,
        key: tuple[str, str] | None = None, limit: int = 50,
    ) -> list[MessageView]:
        raise NotImplementedError

    async def stats(self, *, since: datetime) -> dict[str, Any]:
        """{"volume": [{channel, hour, received, failed}], "failures": [{channel, party, count}]}"""
        raise NotImplementedError

    async def audit_read(self, *, who: str, message_id: str, action: str, remote: str) -> None:
        raise NotImplementedError

    async def prune(self, *, older_than: datetime) -> int:
        """Delete finished messages received before `older_than`; never queued/unfinished ones."""
        raise NotImplementedError
