"""The Alembic revisions build exactly the tables engine/store/schema.py declares."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.store import migrate
from engine.store.schema import metadata


def schema_differences(url: str) -> list[object]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


async def test_migrated_schema_matches_metadata(db_url: str) -> None:
    await migrate(db_url)
    assert schema_differences(db_url) == []


async def test_migrating_twice_changes_nothing(db_url: str) -> None:
    await migrate(db_url)
    await migrate(db_url)
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert versions == [("0002",)]


async def test_the_comparison_notices_a_missing_index(db_url: str) -> None:
    # Guards the comparison itself: a schema that drifted from metadata must show up.
    await migrate(db_url)
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP INDEX ix_stages_delivery"))
    finally:
        engine.dispose()
    [(action, index)] = schema_differences(db_url)  # type: ignore[misc]
    assert (action, index.name) == ("add_index", "ix_stages_delivery")
