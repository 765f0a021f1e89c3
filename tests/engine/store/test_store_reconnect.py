"""The store carries on after PostgreSQL drops its connections (a restart, a failover)."""

from __future__ import annotations

import secrets

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from engine.store import MessageStore


def drop_connections(url: str) -> int:
    """Terminate every backend opened through `url` (tagged with its application_name)."""
    parsed = make_url(url)
    application = parsed.query["application_name"]
    admin = sa.create_engine(parsed.difference_update_query(["options", "application_name"]))
    try:
        with admin.begin() as connection:
            return len(connection.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name"), {"name": application},
            ).all())
    finally:
        admin.dispose()


async def test_writes_and_reads_survive_dropped_connections(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("only a server can drop the store's connections")
    tagged = make_url(db_url).update_query_dict(
        {"application_name": f"hb_reconnect_{secrets.token_hex(4)}"})
    db_url = tagged.render_as_string(hide_password=False)
    store = await MessageStore.open(db_url)
    try:
        await store.suspend("yibao", reason="maintenance", by="ops1")
        assert await store.suspensions()
        assert drop_connections(db_url) >= 2  # the writer's and a reader's

        await store.suspend("e_invoice", reason="maintenance", by="ops1")
        assert set(await store.suspensions()) == {"yibao", "e_invoice"}
    finally:
        await store.close()
