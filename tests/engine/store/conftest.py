"""Store fixtures: every test runs on SQLite (a file in tmp_path) and, when
HISBRIDGE_TEST_DATABASE_URL is set, on PostgreSQL in a schema of its own."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.ids import new_id
from engine.message import Delivery, Payload, Status
from engine.store import MessageStore
from engine.store.records import NewDelivery, NewMessage
from tests.support.postgres import postgres_schema

POSTGRES_URL = os.environ.get("HISBRIDGE_TEST_DATABASE_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'hisbridge.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("HISBRIDGE_TEST_DATABASE_URL is not set")
    with postgres_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[MessageStore]:
    opened = await MessageStore.open(db_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def new_message() -> Callable[..., NewMessage]:
    """Builds a NewMessage with synthetic content; keyword arguments override."""
    return make_message


def make_message(
    *, channel: str = "yibao_settle", destinations: dict[str, Delivery] | None = None,
    status: Status = Status.RECEIVED, received_at: datetime | None = None,
    keys: dict[str, str] | None = None, raw: Payload | None = None,
) -> NewMessage:
    destinations = destinations if destinations is not None else {"yibao": Delivery.SYNC}
    return NewMessage(
        id=new_id(), channel=channel, source="his_api",
        received_at=received_at or datetime.now(UTC),
        raw=raw if raw is not None else Payload.from_json({"infno": "2207", "psn_no": "P0001"}),
        content_type="application/json",
        deliveries=[
            NewDelivery(name, kind, Status.QUEUED if kind is Delivery.ASYNC else Status.RECEIVED)
            for name, kind in destinations.items()
        ],
        status=status, business_keys=keys or {},
    )
