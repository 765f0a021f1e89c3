"""SQLAlchemy engines for the store: one for the group-commit writer, one pooled for readers.

SQLite runs in WAL mode with synchronous=FULL (a commit survives power loss) and foreign
keys on. SQLAlchemy, not the sqlite3 module, emits BEGIN, so each transaction starts where
we say: the writer uses BEGIN IMMEDIATE and takes the write lock up front, which also
serialises writers (and outbox claims) across processes sharing one database file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

DEFAULT_URL = "sqlite:///var/hisbridge.db"
BUSY_TIMEOUT_MS = 30_000

Role = Literal["writer", "reader", "admin"]


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_store_engine(url: str | URL, role: Role) -> Engine:
    """An engine for `role`: the writer holds one connection for its whole life; readers
    share a pool; admin (migrations, maintenance) opens short-lived connections."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        pool_args: dict[str, Any] = {"pool_pre_ping": True}
        if role == "writer":
            pool_args.update(pool_size=1, max_overflow=0)
        return sa.create_engine(parsed, **pool_args)

    _create_parent_dir(parsed)
    engine = sa.create_engine(parsed, pool_size=1 if role == "writer" else 5)
    begin = "BEGIN IMMEDIATE" if role == "writer" else "BEGIN"

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql(begin)

    return engine


def _create_parent_dir(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def to_db_time(moment: datetime) -> datetime:
    """Every stored moment is UTC; a naive datetime is taken to be UTC already.

    SQLite keeps no offset, so values must be UTC before they are written or compared."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def from_db_time(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return to_db_time(moment)


def utc_now() -> datetime:
    return datetime.now(UTC)
