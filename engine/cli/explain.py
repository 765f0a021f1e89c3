"""`hisbridge messages`, `show`, `diff` and `stats`: explain what happened to a message.

Listings mask names, ID numbers and phone numbers (`logging.redact_fields`). `show` and
`diff` print payloads as they are, because seeing the real bytes is their purpose, and
write an audit row (who, which message, which action) before printing anything; `--mask`
masks them too, e.g. for pasting into a ticket.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click
import structlog

from engine.attribution.loader import load_conf_rules
from engine.formats.diff import DiffEntry, alignment, diff_flattened, render_diff
from engine.formats.registry import FormatRegistry
from engine.logging import mask_value, redact
from engine.message import Party, Payload, StageName, Status
from engine.store.blobs import BLOB_KEY

if TYPE_CHECKING:
    from engine.cli import CliContext
    from engine.store.records import MessageView
    from engine.store.store import MessageStore

log = structlog.get_logger(__name__)

T = TypeVar("T")

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SECRET_HEADER = re.compile(r"authorization|cookie|token|secret|password|api-?key", re.IGNORECASE)
_LAST_NAME = re.compile(r"([^\W\d][\w-]*)\W*$")


def parse_when(text: str) -> datetime:
    """`1h`, `30m`, `2d` (that long ago) or an ISO time (local time unless it has an offset)."""
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative[1]), _UNITS[relative[2]]
        return datetime.now(UTC) - timedelta(**{unit: amount})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration like 1h/30m/2d nor an ISO time"
        ) from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.astimezone().astimezone(UTC)


def _when_option(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> datetime | None:
    return None if value is None else parse_when(value)


def _run(obj: CliContext, work: Callable[[MessageStore], Awaitable[T]]) -> T:
    async def with_store() -> T:
        store = await obj.open_store()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(with_store())


def _local(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(_width(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [
            cell + " " * (width - _width(cell)) for cell, width in zip(row, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _reader(who: str | None) -> str:
    if who:
        return who
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# --- messages -----------------------------------------------------------------------------


def _key_option(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, str] | None:
    if value is None:
        return None
    name, sep, key_value = value.partition("=")
    if not sep or not name:
        raise click.BadParameter("use name=value, e.g. setl_id=S123")
    return name, key_value


@click.command("messages")
@click.option("--channel", help="only this channel")
@click.option("--status", type=click.Choice([s.value for s in Status]), help="only this status")
@click.option(
    "--party",
    type=click.Choice([p.value for p in Party]),
    help="only failures blamed on this party",
)
@click.option(
    "--since",
    callback=_when_option,
    metavar="WHEN",
    help="received at or after: 1h, 30m, 2d or 2026-11-01T08:00",
)
@click.option(
    "--until", callback=_when_option, metavar="WHEN", help="received before (same forms as --since)"
)
@click.option("--key", callback=_key_option, help="business key name=value, e.g. setl_id=S123")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON lines instead of a table")
@click.pass_obj
def messages(
    obj: CliContext,
    channel: str | None,
    status: str | None,
    party: str | None,
    since: datetime | None,
    until: datetime | None,
    key: tuple[str, str] | None,
    limit: int,
    as_json: bool,
) -> None:
    """List messages, newest first. Names, ID numbers and phone numbers are masked."""
    found = _run(
        obj,
        lambda store: store.list_messages(
            channel=channel,
            status=status,
            party=party,
            since=since,
            until=until,
            key=key,
            limit=limit,
        ),
    )
    fields = obj.config.logging.redact_fields
    if as_json:
        for view in found:
            click.echo(redact(json.dumps(_listing(view), ensure_ascii=False), fields))
        return
    if not found:
        click.echo("no messages match")
        return
    rows = [
        [
            redact(str(cell), fields)
            for cell in (
                view.id,
                _local(view.received_at),
                view.channel,
                view.status,
                view.party or "-",
                view.rule_id or "-",
                view.correlation_key or "-",
            )
        ]
        for view in found
    ]
    click.echo(
        _table(["id", "received", "channel", "status", "party", "rule", "correlation key"], rows)
    )


def _listing(view: MessageView) -> dict[str, Any]:
    return {
        "id": view.id,
        "received_at": view.received_at.isoformat(),
        "channel": view.channel,
        "status": view.status,
        "party": view.party,
        "rule_id": view.rule_id,
        "reason": view.reason,
        "correlation_key": view.correlation_key,
        "business_keys": view.business_keys,
    }


# --- show ---------------------------------------------------------------------------------


@dataclass
class _Explainer:
    """What show and diff share: formats, masking and remedies looked up by rule id."""

    registry: FormatRegistry
    redact_fields: list[str]
    remedies: dict[str, str]
    mask: bool

    @classmethod
    def of(cls, obj: CliContext, *, mask: bool) -> _Explainer:
        rules = [*obj.catalogue.fault_rules, *load_conf_rules(obj.conf_dir)]
        return cls(
            FormatRegistry(obj.catalogue.formats),
            list(obj.config.logging.redact_fields),
            {rule.id: rule.remedy for rule in rules if rule.remedy},
            mask,
        )

    def meta(self, text: str) -> str:
        """Metadata (keys, reasons, errors) is always masked."""
        return redact(text, self.redact_fields)

    def content(self, text: str) -> str:
        return redact(text, self.redact_fields) if self.mask else text

    def verdict(self, party: str | None, rule_id: str | None, reason: str | None) -> list[str]:
        if not party and not rule_id:
            return []
        lines = [self.meta(f"{party or '-'} ({rule_id or 'no rule'}): {reason or ''}".rstrip())]
        remedy = self.remedies.get(rule_id or "")
        if remedy:
            lines.append(f"  remedy: {remedy}")
        return lines


def _stage_payload(stage: dict[str, Any]) -> Payload:
    return Payload(stage["body"], stage["content_type"], stage["headers"])


def _stage_label(stage: dict[str, Any]) -> str:
    label = str(stage["name"])
    if stage.get("destination"):
        label += f" → {stage['destination']}"
    if stage.get("attempt") is not None:
        label += f" attempt {stage['attempt']}"
    if stage.get("step"):
        label += f" step {stage['step']}"
    return label


async def _load(store: MessageStore, message_id: str, who: str, action: str) -> MessageView:
    view = await store.get_message(message_id, with_stages=True)
    if view is None:
        raise click.ClickException(f"no message with id {message_id}")
    await store.audit_read(who=who, message_id=message_id, action=action, remote="cli")
    return view


@click.command("show")
@click.argument("message_id")
@click.option(
    "--stage",
    "stage_name",
    type=click.Choice([s.value for s in StageName]),
    help="only stages of this name",
)
@click.option(
    "--raw-bytes",
    is_flag=True,
    help="write stage bodies byte for byte to stdout (everything else to stderr)",
)
@click.option("--mask", is_flag=True, help="mask names, ID and phone numbers in payloads too")
@click.option("--as", "who", help="name recorded in the audit log (default: the OS user)")
@click.pass_obj
def show(
    obj: CliContext,
    message_id: str,
    stage_name: str | None,
    raw_bytes: bool,
    mask: bool,
    who: str | None,
) -> None:
    """A message, its deliveries with every attempt, and each stage rendered by its format.

    Reading payloads is audited."""
    explainer = _Explainer.of(obj, mask=mask)
    view = _run(obj, lambda store: _load(store, message_id, _reader(who), "show"))
    # with --raw-bytes, stdout carries the bodies only, so redirecting it yields exact bytes
    for line in _summary(view, explainer):
        click.echo(line, err=raw_bytes)
    stages = [s for s in view.stages if stage_name is None or s["name"] == stage_name]
    if not stages:
        click.echo(f"\nno {stage_name + ' ' if stage_name else ''}stages stored", err=raw_bytes)
    for stage in stages:
        payload = _stage_payload(stage)
        expected = explainer.registry.for_payload(payload)
        shown_as, rendered = (expected, "") if raw_bytes else explainer.registry.render(payload)
        fmt = expected.name if shown_as is expected else f"not valid {expected.name}, shown as text"
        size = f"{len(payload.body)} bytes"
        click.echo(
            f"\n── {_stage_label(stage)} · {payload.content_type or 'no content type'} · "
            f"{fmt} · {size} ──",
            err=raw_bytes,
        )
        for name, value in payload.headers.items():
            shown = mask_value(value) if _SECRET_HEADER.search(name) else explainer.content(value)
            click.echo(f"{name}: {shown}", err=raw_bytes)
        if raw_bytes:
            click.echo(payload.body, nl=False)
        else:
            click.echo(explainer.content(rendered))


def _summary(view: MessageView, explainer: _Explainer) -> list[str]:
    lines = [
        f"message {view.id}  channel {view.channel}  source {view.source}  status {view.status}",
        f"received {_local(view.received_at)}  content type {view.content_type}",
    ]
    if view.correlation_key or view.business_keys:
        keys = ", ".join(
            f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in sorted(view.business_keys.items())
        )
        lines.append(
            explainer.meta(f"correlation key {view.correlation_key or '-'}  keys {keys or '-'}")
        )
    refs = view.business_keys.get(BLOB_KEY)
    for ref in [refs] if isinstance(refs, str) else refs or []:
        lines.append(explainer.meta(f"attachment {ref}: hisbridge blob {view.id} {ref} -o FILE"))
    if view.parent_id:
        lines.append(f"replay of {view.parent_id}")
    lines.extend(
        f"verdict {line}" if i == 0 else line
        for i, line in enumerate(explainer.verdict(view.party, view.rule_id, view.reason))
    )
    for delivery in view.deliveries:
        lines.append(
            f"\ndelivery {delivery.destination} ({delivery.delivery}): {delivery.status}, "
            f"{delivery.attempts} attempt(s)"
        )
        verdict = (delivery.party, delivery.rule_id, delivery.reason)
        if verdict != (view.party, view.rule_id, view.reason):
            lines.extend(f"  {line}" for line in explainer.verdict(*verdict))
        if delivery.next_attempt_at and delivery.status == Status.QUEUED:
            lines.append(f"  next attempt at {_local(delivery.next_attempt_at)}")
        lines.extend(_attempt_line(row, explainer) for row in delivery.attempt_rows)
    return lines


def _attempt_line(row: dict[str, Any], explainer: _Explainer) -> str:
    parts = [
        f"  #{row['number']}",
        _local(row["started_at"]),
        f"{row['duration_ms']:.1f} ms",
        str(row["outcome"]),
    ]
    if row.get("http_status") is not None:
        parts.append(f"HTTP {row['http_status']}")
    if row.get("ack_code"):
        parts.append(f"ACK {row['ack_code']}")
    if row.get("party") or row.get("rule_id"):
        parts.append(f"{row.get('party') or '-'} ({row.get('rule_id') or 'no rule'})")
    if row.get("replay_of"):
        parts.append(f"replay of {row['replay_of']}")
    line = "  ".join(parts)
    if row.get("error"):
        line += f"\n      {row['error']}"
    return explainer.meta(line)


# --- diff ---------------------------------------------------------------------------------


def _pick(view: MessageView, name: str, destination: str | None) -> dict[str, Any] | None:
    """The newest stage of that name; ambiguous across destinations is an error."""
    candidates = [
        s
        for s in view.stages
        if s["name"] == name and (destination is None or s["destination"] == destination)
    ]
    destinations = sorted({str(s["destination"]) for s in candidates if s["destination"]})
    if destination is None and len(destinations) > 1:
        raise click.UsageError(
            f"message {view.id} has a {name} stage for {', '.join(destinations)}: "
            f"pick one with --destination"
        )
    return candidates[-1] if candidates else None


def _require(view: MessageView, name: str, destination: str | None) -> dict[str, Any]:
    stage = _pick(view, name, destination)
    if stage is None:
        where = f" for destination {destination}" if destination else ""
        stored = ", ".join(sorted({str(s["name"]) for s in view.stages})) or "none"
        raise click.ClickException(
            f"message {view.id} has no {name} stage{where} (stored: {stored})"
        )
    return stage


def _default_pair(
    view: MessageView, destination: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """raw vs transformed; raw vs sent when the channel keeps no transformed copies."""
    raw = _require(view, StageName.RAW, None)
    later = _pick(view, StageName.TRANSFORMED, destination) or _require(
        view, StageName.SENT, destination
    )
    return raw, later


@click.command("diff")
@click.argument("message_id")
@click.argument(
    "stages",
    nargs=-1,
    metavar="[STAGE_A [STAGE_B]]",
    type=click.Choice([s.value for s in StageName]),
)
@click.option("--destination", help="the destination whose stages to use")
@click.option("--against", "other_id", help="compare with this other message")
@click.option(
    "--format", "format_name", help="read both sides in this format (see `hisbridge plugins`)"
)
@click.option("--mask", is_flag=True, help="mask names, ID and phone numbers in the values")
@click.option("--as", "who", help="name recorded in the audit log (default: the OS user)")
@click.pass_obj
def diff(
    obj: CliContext,
    message_id: str,
    stages: tuple[str, ...],
    destination: str | None,
    other_id: str | None,
    format_name: str | None,
    mask: bool,
    who: str | None,
) -> None:
    """Field-by-field differences between two stages.

    \b
    hisbridge diff ID                      raw vs transformed (or sent)
    hisbridge diff ID raw sent             any two stages of one message
    hisbridge diff ID --against OTHER      the raw stages of two messages
    hisbridge diff ID sent --against OTHER the same stage of two messages

    Reading payloads is audited (once per message)."""
    if len(stages) > 2 or (len(stages) == 1 and other_id is None):
        raise click.UsageError("give two stages (STAGE_A STAGE_B), or one stage with --against")
    explainer = _Explainer.of(obj, mask=mask)
    if format_name is not None and format_name not in explainer.registry.names:
        raise click.BadParameter(
            f"known formats: {', '.join(explainer.registry.names)}", param_hint="--format"
        )
    reader = _reader(who)

    async def load(store: MessageStore) -> tuple[MessageView, MessageView]:
        first = await _load(store, message_id, reader, "diff")
        second = first if other_id is None else await _load(store, other_id, reader, "diff")
        return first, second

    first, second = _run(obj, load)
    if other_id is None and not stages:
        left, right = _default_pair(first, destination)
    else:
        names = stages or (StageName.RAW.value,)
        left = _require(first, names[0], destination)
        right = _require(second, names[-1], destination)
    left_flat = explainer.registry.flatten(_stage_payload(left), format=format_name)
    right_flat = explainer.registry.flatten(_stage_payload(right), format=format_name)
    click.echo(f"--- {first.id} {_stage_label(left)} ({left_flat.format.name})")
    click.echo(f"+++ {second.id} {_stage_label(right)} ({right_flat.format.name})")
    click.echo(f"    {alignment(left_flat, right_flat)}")
    entries = diff_flattened(left_flat, right_flat)
    if mask:
        entries = [_masked(entry, explainer) for entry in entries]
    click.echo(render_diff(entries))


def _masked(entry: DiffEntry, explainer: _Explainer) -> DiffEntry:
    """Mask values under a configured field name, and ID/phone numbers anywhere."""
    names = {name.lower() for name in explainer.redact_fields}
    last = _LAST_NAME.search(entry.path.rsplit("→", 1)[-1])
    by_name = last is not None and last[1].lower() in names

    def hide(value: str | None) -> str | None:
        if value is None:
            return None
        return mask_value(value) if by_name else redact(value, ())

    return DiffEntry(entry.path, entry.kind, hide(entry.old), hide(entry.new))


# --- stats --------------------------------------------------------------------------------


@click.command("stats")
@click.option(
    "--since",
    callback=_when_option,
    metavar="WHEN",
    default="24h",
    show_default=True,
    help="1h, 7d or an ISO time",
)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")
@click.pass_obj
def stats(obj: CliContext, since: datetime, as_json: bool) -> None:
    """Messages per channel per hour, and failures by the party at fault."""
    figures = _run(obj, lambda store: store.stats(since=since))
    if as_json:
        click.echo(
            json.dumps(
                figures, default=lambda value: value.isoformat(), ensure_ascii=False, indent=2
            )
        )
        return
    click.echo(f"since {_local(since)}")
    volume = [
        [_local(row["hour"])[:16], row["channel"], str(row["received"]), str(row["failed"])]
        for row in figures["volume"]
    ]
    click.echo(
        "\n"
        + (_table(["hour", "channel", "received", "failed"], volume) if volume else "no messages")
    )
    failures = [[row["channel"], row["party"], str(row["count"])] for row in figures["failures"]]
    click.echo(
        "\n" + (_table(["channel", "party", "failures"], failures) if failures else "no failures")
    )


commands = [messages, show, diff, stats]
