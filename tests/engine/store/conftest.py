"""Store fixtures: every test runs on SQLite (a file in tmp_path) and, when
HISBRIDGE_TEST_DATABASE_URL is set, on PostgreSQL in a schema of its own."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from engine.ids import new_id
from engine.message import Delivery, Payload, Status
from engine.store import MessageStore
from engine.store.records import NewDelivery, NewMessage

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


class postgres_schema:
    """A throwaway schema; the yielded URL puts it first on the search_path."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.schema = f"hb_test_{secrets.token_hex(6)}"

    def _admin(self, statement: str) -> None:
        engine = sa.create_engine(self.base_url)
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(statement)
        finally:
            engine.dispose()

    def __enter__(self) -> str:
        self._admin(f"CREATE SCHEMA {self.schema}")
        url = make_url(self.base_url).update_query_dict(
            {"options": f"-csearch_path={self.schema}"}
        )
        return url.render_as_string(hide_password=False)

    def __exit__(self, *exc: object) -> None:
        self._admin(f"DROP SCHEMA {self.schema} CASCADE")


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
