"""Schema migrations (Alembic), run from code: no alembic.ini, the scripts live in
engine/store/migrations beside this module."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from engine.store.database import DEFAULT_URL, create_store_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    from alembic.config import Config  # Alembic is slow to import and needed only here

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Percent signs (URL-encoded passwords) would be read as interpolation by configparser.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(url: str = DEFAULT_URL) -> None:
    """Bring the database at `url` to the newest revision (blocking)."""
    from alembic import command

    config = alembic_config(url)
    engine = create_store_engine(url, "admin")
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


async def migrate(url: str = DEFAULT_URL) -> None:
    """Bring the database at `url` to the newest revision."""
    await asyncio.to_thread(upgrade_to_head, url)
