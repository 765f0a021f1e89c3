"""A throwaway PostgreSQL schema per test, for store and end-to-end tests."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.engine import make_url


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
