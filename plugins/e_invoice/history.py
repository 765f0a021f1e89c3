"""Bulk upload of historical invoices (门急诊和住院历史数据上传) from an old HIS's CSV export.

One CSV row (or row of a SQL query on the old HIS's database) is one invoice: a `method`
column (default `outpatient`) and one column per business field; list fields
(`payChannelDetail`, `chargeDetail`, `listDetail`, `otherInfo`) hold JSON. Rows go one at
a time through the same adapter the daemon uses (validation, signing, the busNo lookup
after a lost answer), paced to `rate` calls per second.

The result report is appended and flushed row by row, so an interrupted run keeps what it
did. A rerun skips every busNo the report already shows as issued, and every busNo the
engine's store already delivered; a row that slipped through anyway is answered by the
platform as a duplicate, which the adapter resolves to the existing bill. No busNo is ever
issued twice.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.adapters.base import Wire
from engine.errors import AdapterError, EngineError, InputError
from engine.message import Payload
from plugins.e_invoice.adapter import EInvoiceAdapter

LIST_FIELDS = frozenset({"payChannelDetail", "chargeDetail", "listDetail", "otherInfo", "otherMedicalList"})
REPORT_FIELDS = ("row", "busNo", "method", "outcome", "billBatchCode", "billNo", "random", "error")
DONE = frozenset({"issued", "duplicate", "lookup", "already_sent"})
"""Outcomes meaning the platform holds the bill: a rerun skips these busNos."""

AlreadySent = Callable[[str], Awaitable[bool]]


@dataclass
class HistoryRow:
    number: int
    method: str
    data: dict[str, Any]

    @property
    def bus_no(self) -> str:
        return str(self.data.get("busNo") or "")


RowItem = HistoryRow | tuple[int, str, InputError]
"""A row to upload, or (row number, busNo, why it cannot be read)."""


def read_rows(path: Path) -> Iterator[RowItem]:
    """Rows of a CSV export (UTF-8, with or without BOM)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        yield from parse_records(csv.DictReader(handle))


def query_rows(database_url: str, query: str) -> Iterator[RowItem]:
    """Rows of a SQL query on the old HIS's database, columns named as the CSV's."""
    database = sa.create_engine(database_url)
    try:
        with database.connect() as connection:
            records = connection.execute(sa.text(query)).mappings()
            yield from parse_records({k: None if v is None else str(v) for k, v in r.items()} for r in records)
    finally:
        database.dispose()


def parse_records(records: Iterable[Mapping[str, str | None]]) -> Iterator[RowItem]:
    for number, record in enumerate(records, start=1):
        method = (record.get("method") or "outpatient").strip()
        data: dict[str, Any] = {}
        for name, cell in record.items():
            if name is None or name == "method" or cell is None or cell.strip() == "":
                continue
            try:
                data[name] = json.loads(cell, parse_float=Decimal) if name in LIST_FIELDS else cell.strip()
            except json.JSONDecodeError as exc:
                data = {}
                yield number, str(record.get("busNo") or ""), InputError(f"not JSON: {exc}", field=f"data.{name}")
                break
        else:
            yield HistoryRow(number, method, data)


def done_bus_nos(report: Path) -> set[str]:
    """busNos an earlier run's report shows as issued."""
    if not report.exists():
        return set()
    with report.open(encoding="utf-8", newline="") as handle:
        return {row["busNo"] for row in csv.DictReader(handle) if row.get("outcome") in DONE}


class HistoryUpload:
    def __init__(self, adapter: EInvoiceAdapter, report: Path, *, rate: float,
                 already_sent: AlreadySent | None = None) -> None:
        self.adapter = adapter
        self.report = report
        self.interval = 1.0 / rate
        self.already_sent = already_sent
        self.counts: dict[str, int] = {}

    async def run(self, rows: Iterator[RowItem],
                  progress: Callable[[], None] = lambda: None) -> dict[str, int]:
        skip = done_bus_nos(self.report)
        fresh = not self.report.exists() or self.report.stat().st_size == 0
        loop = asyncio.get_running_loop()
        next_call = loop.time()
        with self.report.open("a", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, REPORT_FIELDS)
            if fresh:
                writer.writeheader()
            for item in rows:
                if isinstance(item, tuple):
                    number, bus_no, error = item
                    self._write(writer, handle, {"row": number, "busNo": bus_no, "outcome": "invalid",
                                                 "error": str(error)})
                elif item.bus_no in skip:
                    self.counts["skipped"] = self.counts.get("skipped", 0) + 1
                else:
                    await asyncio.sleep(max(0.0, next_call - loop.time()))
                    next_call = max(next_call, loop.time()) + self.interval
                    result = await self._upload(item)
                    if result["outcome"] in DONE:
                        skip.add(item.bus_no)
                    self._write(writer, handle, result)
                progress()
        return self.counts

    async def _upload(self, row: HistoryRow) -> dict[str, Any]:
        base = {"row": row.number, "busNo": row.bus_no, "method": row.method}
        if self.already_sent is not None and row.bus_no and await self.already_sent(row.bus_no):
            return {**base, "outcome": "already_sent"}
        call = Payload(json.dumps({"method": row.method, "data": row.data}, ensure_ascii=False, default=str).encode())
        try:
            request = self.adapter.transform(call)
        except InputError as exc:
            return {**base, "outcome": "invalid", "error": str(exc)}
        try:
            reply = self.adapter.transform_response(await self.adapter.send(request, Wire())).json()
        except (AdapterError, EngineError) as exc:
            return {**base, "outcome": "failed", "error": f"{type(exc).__name__}: {exc}"}
        return {**base, "outcome": reply["resolved_by"], "billBatchCode": reply.get("billBatchCode", ""),
                "billNo": reply.get("billNo", ""), "random": reply.get("random", "")}

    def _write(self, writer: csv.DictWriter[str], handle: Any, result: dict[str, Any]) -> None:
        writer.writerow(result)
        handle.flush()
        self.counts[result["outcome"]] = self.counts.get(result["outcome"], 0) + 1
