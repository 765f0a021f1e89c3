"""`lis_table`: results written into the LIS's intermediate table (中间表) with SQLAlchemy.

Many Chinese LIS products read instrument results from a table the interface fills; the
LIS polls it and marks rows it has taken (`taken`, 0 until then). One row per result, in
one transaction per message. Column names follow the LIS vendor's table through `columns`
(`{lis_code: ITEM_CODE, value: RESULT}`); the defaults are the field names.

A resend cannot duplicate rows: each row carries `batch_key` (a hash of the result
document) and its line number, unique together, and a resend that meets them finds the
message already delivered. `create_table: true` creates the table when missing (tests,
the demo, a fresh LIS schema); otherwise the LIS owns it.

Failures: the database unreachable → TransientError (retried from the outbox, counts
toward the breaker); the database refusing the rows (a missing column, a constraint,
a permission) → PermanentError, attributed to the LIS side.

    destinations:
      - name: lis_table
        adapter: lis_table
        config: {url: {$env: LIS_DB_URL}, table: lis_result_inbox, codes: conf/lis_codes/x.csv}
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
import structlog
from pydantic import Field, field_validator
from sqlalchemy import exc as sa_exc

from engine.adapters.base import Adapter, AdapterConfig, AdapterServices, Wire
from engine.config.model import SecretRef
from engine.config.secrets import resolve
from engine.errors import PermanentError, TransientError
from engine.message import Delivery, Payload
from plugins.lis_device.lis_delivery import LisResultsConfig, LisResultsMapping

log = structlog.get_logger(__name__)

ROW_FIELDS = (
    "batch_key",
    "line_no",
    "instrument",
    "specimen_barcode",
    "lis_code",
    "lis_name",
    "test_code",
    "value",
    "numeric_value",
    "units",
    "reference_range",
    "abnormal_flags",
    "result_status",
    "observed_at",
    "qc",
    "written_at",
    "taken",
)
_SCHEMA_PROBLEM = re.compile(r"no such (table|column)|has no column|does not exist", re.IGNORECASE)
_TEXT_LENGTHS = {"batch_key": 64, "abnormal_flags": 64, "result_status": 16, "observed_at": 32}


class LisTableConfig(LisResultsConfig):
    url: str | SecretRef = Field(
        description="SQLAlchemy URL of the LIS database (a secret: `{$env: LIS_DB_URL}`)",
        examples=[{"$env": "LIS_DB_URL"}, "postgresql+psycopg://lis@10.0.0.5/lis"],
    )
    table: str = Field("lis_result_inbox", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="the intermediate table")
    schema_name: str | None = Field(None, description="database schema of the table (PostgreSQL)")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description=f"column name per field, where the LIS names them differently; fields: {', '.join(ROW_FIELDS)}",
        examples=[{"lis_code": "ITEM_CODE", "value": "RESULT", "specimen_barcode": "BARCODE"}],
    )
    create_table: bool = Field(False, description="create the table when it does not exist")

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, columns: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(columns) - set(ROW_FIELDS))
        if unknown:
            raise ValueError(f"unknown fields {', '.join(unknown)}; known: {', '.join(ROW_FIELDS)}")
        return columns


def result_table(config: LisTableConfig, metadata: sa.MetaData) -> sa.Table:
    """The intermediate table as SQLAlchemy sees it (names from `columns`)."""

    def column(field: str, kind: Any, **options: Any) -> sa.Column[Any]:
        return sa.Column(config.columns.get(field, field), kind, key=field, **options)

    text_columns = [
        column(field, sa.String(_TEXT_LENGTHS.get(field, 255)), nullable=False, default="")
        for field in ROW_FIELDS
        if field not in ("line_no", "numeric_value", "qc", "written_at", "taken")
    ]
    return sa.Table(
        config.table,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        *text_columns,
        column("line_no", sa.Integer, nullable=False),
        column("numeric_value", sa.Float, nullable=True),
        column("qc", sa.Boolean, nullable=False, default=False),
        column("written_at", sa.DateTime, nullable=False),
        column("taken", sa.Integer, nullable=False, default=0),
        sa.UniqueConstraint(config.columns.get("batch_key", "batch_key"), config.columns.get("line_no", "line_no")),
        schema=config.schema_name,
    )


def rows_of(document: dict[str, Any], batch_key: str, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "batch_key": batch_key,
            "line_no": number,
            "instrument": document.get("instrument", ""),
            "specimen_barcode": result["specimen_barcode"],
            "lis_code": result["lis_code"],
            "lis_name": result["lis_name"],
            "test_code": result["test_code"],
            "value": result["value"],
            "numeric_value": result["numeric"],
            "units": result["units"],
            "reference_range": result["reference_range"],
            "abnormal_flags": "~".join(result["abnormal_flags"]),
            "result_status": result["result_status"],
            "observed_at": result["observed_at"],
            "qc": bool(result["qc"]),
            "written_at": now,
            "taken": 0,
        }
        for number, result in enumerate(document["results"], start=1)
    ]


class LisTableAdapter(LisResultsMapping, Adapter):
    name: ClassVar[str] = "lis_table"
    Config = LisTableConfig
    delivery = Delivery.ASYNC
    idempotent = True  # rows are unique per (batch_key, line_no): a resend inserts nothing twice
    business_keys = ("specimen_barcode",)
    description = "analyser results with LIS item codes inserted into the LIS intermediate table (中间表)"

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        assert isinstance(config, LisTableConfig)
        super().__init__(config, services)
        self.settings = config
        self.mapper = config.mapper()
        url = resolve(config.url) if isinstance(config.url, SecretRef) else config.url
        self._database = sa.create_engine(url, pool_pre_ping=True)
        self._table = result_table(config, sa.MetaData())
        self._created = not config.create_table

    async def send(self, request: Payload, wire: Wire) -> Payload:
        document = request.json()
        batch_key = hashlib.sha256(request.body).hexdigest()[:32]
        rows = rows_of(document, batch_key, datetime.now(UTC).replace(tzinfo=None))
        connection = await asyncio.to_thread(self._connect)
        try:
            wire.sent(request)  # the rows leave with the INSERT, once connected
            inserted = await asyncio.to_thread(self._insert, connection, rows)
        finally:
            await asyncio.to_thread(connection.close)
        answer = {"table": self.settings.table, "rows": len(rows), "inserted": inserted, "batch_key": batch_key}
        reply = Payload.from_json(answer)
        wire.received(reply)
        return reply

    def _connect(self) -> sa.Connection:
        try:
            return self._database.connect()
        except sa_exc.DBAPIError as exc:
            raise TransientError(f"LIS database unreachable: {_first_line(exc)}", detail=_detail("connect")) from exc

    def _insert(self, connection: sa.Connection, rows: list[dict[str, Any]]) -> int:
        """Insert the rows in one transaction; 0 when this batch is already there."""
        try:
            if not self._created:
                with connection.begin():
                    self._table.create(connection, checkfirst=True)
                self._created = True
            with connection.begin():
                connection.execute(self._table.insert(), rows)
            return len(rows)
        except sa_exc.IntegrityError:
            if self._already_written(connection, rows[0]["batch_key"]):
                return 0
            refusal = "the LIS table refused the rows (a constraint)"
            raise PermanentError(refusal, detail=_detail("constraint")) from None
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
            if _SCHEMA_PROBLEM.search(str(exc.orig)):
                # SQLite reports a missing table or column as an OperationalError too
                misfit = f"the LIS table does not fit: {_first_line(exc)}"
                raise PermanentError(misfit, detail=_detail("refused")) from exc
            # connected, then lost: the transaction did not commit, but say the rows left
            lost = f"LIS database connection lost: {_first_line(exc)}"
            raise TransientError(lost, detail={"condition": "reset", "request_left": True}) from exc
        except sa_exc.DBAPIError as exc:
            refusal = f"the LIS database refused the rows: {_first_line(exc)}"
            raise PermanentError(refusal, detail=_detail("refused")) from exc

    def _already_written(self, connection: sa.Connection, batch_key: str) -> bool:
        query = sa.select(sa.func.count()).select_from(self._table).where(self._table.c.batch_key == batch_key)
        with connection.begin():
            return bool(connection.execute(query).scalar())

    async def check(self) -> None:
        def ping() -> None:
            with self._database.connect() as connection:
                connection.execute(sa.text("SELECT 1"))

        try:
            await asyncio.to_thread(ping)
        except sa_exc.DBAPIError as exc:
            raise TransientError(f"LIS database unreachable: {_first_line(exc)}", detail=_detail("connect")) from exc

    async def aclose(self) -> None:
        self._database.dispose()


def _detail(problem: str) -> dict[str, object]:
    """`condition: connect` lets the engine's network rules place an unreachable database;
    a refusal is the LIS side's, named by the plugin's rule through `lis_problem`."""
    if problem == "connect":
        return {"condition": "connect", "request_left": False}
    return {"lis_problem": f"table_{problem}", "request_left": True}


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

