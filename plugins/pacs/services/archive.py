"""The engine as the archive of what it routed: reports and orders, read back from its store.

A report channel is one whose processors make the plugin's report JSON (`pacs_oru_report`,
`pacs_report_json`); its `pacs_report_his` destination indexes each report by accession
number and keeps its attachments' blobs as long as the report. The report itself stays where
it already is, in the message's `raw` stage: `ExamArchive` reads it back by running the
channel's own processors again, exactly as the outbox does at delivery, so HIS, the result
query and the statistics see one report. Its PDF and images are the engine's blobs, read by
reference. Orders are read the same way from the channels of the order destinations.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from pydantic import ValidationError

from engine.errors import EngineError, InputError
from engine.intake import run_processors
from engine.message import Payload, StageName, Status
from engine.store.records import MessageView
from plugins.pacs.model import ExamOrder, ExamReport, OrderAction, parse_order
from plugins.pacs.order_adapter import OrderAdapter
from plugins.pacs.report_processor import JsonReportProcessor, OruReportProcessor
from plugins.pacs.services.models import json_object
from plugins.pacs.worklist_adapter import PacsWorklistAdapter

if TYPE_CHECKING:
    from engine.channels import Channel
    from engine.runtime import Engine

log = structlog.get_logger(__name__)

UNUSABLE = frozenset({Status.FAILED.value, Status.FILTERED.value})
REPORT_PROCESSORS = (OruReportProcessor, JsonReportProcessor)
ORDER_DESTINATIONS = (OrderAdapter, PacsWorklistAdapter)
VERSIONS_READ = 50
"""Messages read per channel for one exam: its orders and changes, or its report and corrections."""


@dataclass(frozen=True)
class StoredReport:
    report: ExamReport
    message_id: str
    received_at: datetime


class ExamArchive:
    """Reads the reports and orders the engine stored, through the channels that carried them."""

    def __init__(self, engine: Engine) -> None:
        self.store = engine.store
        self.channels = engine.channels

    def report_channels(self) -> list[str]:
        return sorted(
            name for name, channel in self.channels.items()
            if any(isinstance(processor, REPORT_PROCESSORS) for processor in channel.processors)
        )

    def order_channels(self) -> list[str]:
        return sorted(
            name for name, channel in self.channels.items()
            if any(isinstance(destination.adapter, ORDER_DESTINATIONS) for destination in channel.destinations)
        )

    async def latest_report(self, accession: str) -> StoredReport | None:
        """The newest usable report for the exam (a correction supersedes the original)."""
        for view in await self._newest_first(accession, self.report_channels()):
            stored = await self.report_of(view)
            if stored is not None and stored.report.accession_number == accession:
                return stored
        return None

    async def latest_order(self, accession: str) -> ExamOrder | None:
        """The newest new or change order for the exam (a cancel names no device), as the PACS got it."""
        for view in await self._newest_first(accession, self.order_channels()):
            processed = await self._processed(view)
            if processed is None:
                continue
            try:
                order = parse_order(processed)
            except InputError:
                continue
            if order.accession_number == accession and order.action is not OrderAction.CANCEL:
                return order
        return None

    async def reports_received(
        self, since: datetime, until: datetime, *, limit: int
    ) -> tuple[list[StoredReport], bool]:
        """Usable reports received in [since, until), newest first, at most `limit` messages
        read; the flag says whether more were there."""
        reports: list[StoredReport] = []
        truncated = False
        for channel in self.report_channels():
            views = await self.store.list_messages(channel=channel, since=since, until=until, limit=limit + 1)
            truncated = truncated or len(views) > limit
            for view in views[:limit]:
                if view.status not in UNUSABLE and (stored := await self.report_of(view)) is not None:
                    reports.append(stored)
        reports.sort(key=lambda stored: stored.received_at, reverse=True)
        return reports, truncated

    async def report_of(self, view: MessageView) -> StoredReport | None:
        processed = await self._processed(view)
        if processed is None:
            return None
        try:
            report = ExamReport.model_validate(json_object(processed))
        except InputError as exc:
            log.warning("stored report unreadable", message_id=view.id, field=exc.field)
            return None
        except ValidationError as exc:  # its text quotes the input: names, ids stay out of the log
            log.warning("stored report unreadable", message_id=view.id, field=_location(exc))
            return None
        return StoredReport(report, view.id, view.received_at)

    async def attachment_data(self, report: ExamReport) -> dict[str, str]:
        """{digest: base64} of the report's attachments the engine still holds."""
        found: dict[str, str] = {}
        for attachment in report.attachments:
            blob = await self.store.get_blob(attachment.ref)
            if blob is not None:
                found[attachment.sha256] = base64.b64encode(blob.data).decode("ascii")
        return found

    async def _newest_first(self, accession: str, channels: Iterable[str]) -> list[MessageView]:
        """The exam's usable messages on those channels, newest first: one indexed query per
        channel, so the many result queries that name the same exam are never read."""
        found: list[MessageView] = []
        for channel in channels:
            found += await self.store.list_messages(
                channel=channel, key=("accession_number", accession), limit=VERSIONS_READ
            )
        usable = [view for view in found if view.status not in UNUSABLE]
        return sorted(usable, key=lambda view: (view.received_at, view.id), reverse=True)

    async def _processed(self, view: MessageView) -> Payload | None:
        """The stored raw message through its channel's processors, as at intake."""
        channel: Channel | None = self.channels.get(view.channel)
        raw = await self.store.get_stage(view.id, StageName.RAW.value)
        if channel is None or raw is None:
            return None
        try:
            return run_processors(channel, raw)
        except EngineError as exc:  # a processor changed since: the message no longer maps
            log.warning("stored message no longer maps", message_id=view.id, error=type(exc).__name__,
                        field=getattr(exc, "field", None))
            return None


def _location(exc: ValidationError) -> str:
    return ".".join(str(part) for part in exc.errors()[0]["loc"]) or "body"


__all__ = ["ExamArchive", "StoredReport"]
