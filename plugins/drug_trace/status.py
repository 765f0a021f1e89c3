"""`hisbridge drug-trace status --since DATE`: what the pharmacy captured, what reached the
insurance platform, what waits, and what was rejected and why, read from the engine's store.

A message counts once per state of its drug_trace delivery: `uploaded` (sent), `waiting`
(received or queued: the outbox still works on it), `rejected` (failed or dead; the reason
and the party at fault are listed). Refused input (a malformed code, a duplicate sale) is
stored as failed with party `his` before any delivery exists.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import click

from engine.errors import ConfigError, StoreError
from engine.message import StageName
from plugins.drug_trace.adapter import DrugTraceAdapter
from plugins.drug_trace.uploads import call_keys

if TYPE_CHECKING:
    from engine.cli import CliContext
    from engine.store.records import MessageView

WAITING = frozenset({"received", "queued"})
UPLOADED = "sent"


@dataclass(frozen=True)
class Rejection:
    message_id: str
    received_at: str
    kind: str
    document: str
    trace_code: str
    party: str
    reason: str


def flat(keys: Mapping[str, str | Sequence[str]]) -> dict[str, str]:
    """Each key as one text: several values (every trace code of a sale) comma-joined."""
    return {name: value if isinstance(value, str) else ",".join(value) for name, value in keys.items()}


def state_of(view: MessageView) -> str:
    if view.status == UPLOADED:
        return "uploaded"
    if view.status in WAITING:
        return "waiting"
    return "rejected"


def rejection(view: MessageView, keys: dict[str, str]) -> Rejection:
    failed = next((d for d in view.deliveries if d.status != UPLOADED and d.reason), None)
    return Rejection(
        message_id=view.id, received_at=view.received_at.isoformat(), kind=keys.get("kind", ""),
        document=keys.get("rtal_docno", ""), trace_code=keys.get("trace_code", ""),
        party=(failed.party if failed else view.party) or "", reason=(failed.reason if failed else view.reason) or "",
    )


@click.group("drug-trace")
def drug_trace_group() -> None:
    """Drug traceability code (药品追溯码) commands."""


@drug_trace_group.command("status")
@click.option("--since", required=True, type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="from this date or time (UTC)")
@click.option("--limit", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="messages read at most, newest first")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.pass_obj
def status(obj: CliContext, since: datetime, limit: int, output: str) -> None:
    """Captured, uploaded, waiting and rejected trace-code messages since a date."""
    channels = [
        name for name, channel in obj.config.channels.items()
        if any(dest.adapter == DrugTraceAdapter.name for dest in channel.destinations)
    ]
    if not channels:
        raise ConfigError(["drug-trace status: no channel has a drug_trace destination"])
    start = since.replace(tzinfo=timezone.utc)
    views = asyncio.run(_read(obj, channels, start, limit))
    counts = Counter((keys.get("kind", "?"), state_of(view)) for view, keys in views)
    rejected = [rejection(view, keys) for view, keys in views if state_of(view) == "rejected"]
    if output == "json":
        click.echo(json.dumps({
            "since": start.isoformat(), "captured": len(views),
            "counts": [{"kind": kind, "state": state, "messages": n} for (kind, state), n in sorted(counts.items())],
            "rejected": [asdict(item) for item in rejected],
        }, ensure_ascii=False, indent=2))
    elif output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["message_id", "received_at", "kind", "document", "trace_code", "party", "reason"])
        writer.writerows([list(asdict(item).values()) for item in rejected])
    else:
        click.echo(f"since {start.isoformat()}: {len(views)} captured")
        for (kind, state), n in sorted(counts.items()):
            click.echo(f"  {kind:<13} {state:<9} {n}")
        for item in rejected:
            click.echo(f"rejected {item.message_id} {item.kind} {item.document} {item.trace_code} "
                       f"[{item.party}] {item.reason}")


async def _read(
    obj: CliContext, channels: list[str], since: datetime, limit: int
) -> list[tuple[MessageView, dict[str, str]]]:
    """Each message with its business keys; input refused before routing has none stored,
    so they are read from its raw stage."""
    try:
        store = await obj.open_store()
    except StoreError as exc:
        raise ConfigError([f"drug-trace status: {exc}"]) from exc
    try:
        views: list[tuple[MessageView, dict[str, str]]] = []
        for channel in channels:
            for view in await store.list_messages(channel=channel, since=since, limit=limit):
                keys: Mapping[str, str | Sequence[str]] = view.business_keys
                if not keys:
                    raw = await store.get_stage(view.id, StageName.RAW)
                    keys = call_keys(raw) if raw is not None else {}
                views.append((view, flat(keys)))
        return views
    finally:
        await store.close()
