"""`hisbridge run`, `demo`, `channels`, `breakers`, `suspend`, `resume`, `replay`."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from engine.attribution.loader import load_conf_rules
from engine.config.loader import delivery_of
from engine.daemon import run_until_signalled, start_daemon, stop_daemon
from engine.demo.runner import run_acts, use_demo_environment
from engine.logging import configure_logging
from engine.runtime import Engine

T = TypeVar("T")

if TYPE_CHECKING:
    from engine.cli import CliContext
    from engine.demo.acts import DemoAct


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """The daemon runs on uvloop (installed with uvicorn[standard]) where available."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


@click.command("run")
@click.pass_obj
def run(obj: CliContext) -> None:
    """Start the daemon: listeners, the outbox worker and the HTTP API, until SIGTERM."""
    config = obj.config
    configure_logging(config.logging, json_lines=True)
    run_event_loop(run_until_signalled(
        config, pm=obj.pm, catalogue=obj.catalogue, base_dir=obj.base_dir, rules=load_conf_rules(obj.conf_dir)
    ))


@click.command("demo")
@click.option("--act", "act_names", multiple=True, metavar="NAME",
              help="play only these acts (repeatable); default: every registered act")
@click.pass_obj
def demo(obj: CliContext, act_names: tuple[str, ...]) -> None:
    """Run the daemon beside simulated peers (upstream, insurance centre, analyser, PACS...):
    take them down and back up, and show that HIS never waited and nothing was lost."""
    known = obj.catalogue.demo_acts
    unknown = [name for name in act_names if name not in known]
    if unknown:
        raise click.BadParameter(f"unknown act {', '.join(unknown)}; known: {', '.join(known)}", param_hint="--act")
    acts = [known[name] for name in act_names] if act_names else list(known.values())
    for name in use_demo_environment(list(known.values())):
        click.echo(f"demo: {name} was not set; using a demo value for this run")
    config = obj.config
    configure_logging(config.logging.model_copy(update={"level": "warning"}), json_lines=False)
    ok = run_event_loop(_demo(obj, acts))
    raise SystemExit(0 if ok else 1)


async def _demo(obj: CliContext, acts: list[type[DemoAct]]) -> bool:
    daemon = await start_daemon(
        obj.config, pm=obj.pm, catalogue=obj.catalogue, base_dir=obj.base_dir, rules=load_conf_rules(obj.conf_dir),
    )
    try:
        return await run_acts(daemon, acts, click.echo)
    finally:
        await stop_daemon(daemon)


@click.command("channels")
@click.option("--since", default="24h", show_default=True, help="volume window, e.g. 1h, 7d")
@click.pass_obj
def channels(obj: CliContext, since: str) -> None:
    """The service list: every channel, its source, subscribers, filters and recent volume."""
    config = obj.config
    volume = asyncio.run(_volume(obj, _parse_age(since)))
    for channel in config.channels.values():
        steps = " -> ".join([channel.source.kind, *(p.name for p in channel.processors)])
        counts = volume.get(channel.name, {})
        click.echo(f"{channel.name}  [{steps}]  received {counts.get('received', 0)}, "
                   f"failed {counts.get('failed', 0)} in the last {since}")
        if channel.description:
            click.echo(f"    {channel.description}")
        for destination in channel.destinations:
            where = destination.config.get("url", "")
            condition = _describe_filter(destination.filter.model_dump(by_alias=True, exclude_none=True)) \
                if destination.filter else "everything"
            click.echo(f"    -> {destination.name} ({destination.adapter}, "
                       f"{delivery_of(obj.catalogue, destination).value}) {where}  gets: {condition}")


def _describe_filter(spec: dict[str, Any]) -> str:
    path = spec.pop("path")
    (kind, value), = spec.items()
    return f"{path} {kind} {value}"


async def _volume(obj: CliContext, since: timedelta) -> dict[str, dict[str, int]]:
    store = await obj.open_store()
    try:
        stats = await store.stats(since=datetime.now(UTC) - since)
    finally:
        await store.close()
    totals: dict[str, dict[str, int]] = {}
    for row in stats["volume"]:
        entry = totals.setdefault(row["channel"], {"received": 0, "failed": 0})
        entry["received"] += row["received"]
        entry["failed"] += row["failed"]
    return totals


@click.command("breakers")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def breakers(obj: CliContext, as_json: bool) -> None:
    """Suspensions and the last transition of every destination's breaker, from the store."""
    rows = asyncio.run(_breaker_rows(obj))
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        line = f"{row['breaker']:<28} {row['state']:<10}"
        if row.get("since"):
            line += f" since {row['since']}"
        if row.get("reason"):
            line += f"  ({row['reason']}"
            line += f", by {row['suspended_by']})" if row.get("suspended_by") else ")"
        click.echo(line)


async def _breaker_rows(obj: CliContext) -> list[dict[str, Any]]:
    names = sorted({d.breaker.key or d.name for c in obj.config.channels.values() for d in c.destinations})
    store = await obj.open_store()
    try:
        suspended = await store.suspensions()
        last = await store.last_breaker_events()
    finally:
        await store.close()
    rows = []
    for name in names:
        if name in suspended:
            rows.append({"breaker": name, "state": "suspended", **suspended[name]})
        elif name in last:
            event = last[name]
            rows.append({"breaker": name, "state": event["new_state"], "since": event["at"], "reason": event["reason"]})
        else:
            rows.append({"breaker": name, "state": "closed"})
    return rows


@click.command("suspend")
@click.argument("name")
@click.option("--reason", required=True, help="why, for the other operators (e.g. the centre's maintenance window)")
@click.option("--by", default=None, help="who suspends (default: your login)")
@click.pass_obj
def suspend(obj: CliContext, name: str, reason: str, by: str | None) -> None:
    """Suspend a destination by hand: HIS gets an immediate 'suspended' answer, async
    messages queue. Persisted: the daemon picks it up within seconds and after restarts."""
    asyncio.run(_set_suspension(obj, name, reason=reason, by=by or getpass.getuser()))
    click.echo(f"{name} suspended: {reason}")


@click.command("resume")
@click.argument("name")
@click.option("--by", default=None)
@click.pass_obj
def resume(obj: CliContext, name: str, by: str | None) -> None:
    """Lift a manual suspension; queued messages start draining."""
    asyncio.run(_set_suspension(obj, name, reason=None, by=by or getpass.getuser()))
    click.echo(f"{name} resumed")


async def _set_suspension(obj: CliContext, name: str, *, reason: str | None, by: str) -> None:
    known = {d.breaker.key or d.name for c in obj.config.channels.values() for d in c.destinations}
    if name not in known:
        raise click.BadParameter(f"no destination breaker named {name!r}; known: {', '.join(sorted(known))}")
    store = await obj.open_store()
    try:
        if reason is None:
            if not await store.resume(name):
                raise click.ClickException(f"{name} was not suspended")
            await store.record_breaker_event(name, "suspended", "closed", f"resumed by {by}")
        else:
            await store.suspend(name, reason=reason, by=by)
            await store.record_breaker_event(name, "closed", "suspended", f"{reason} (by {by})")
    finally:
        await store.close()


@click.command("replay")
@click.argument("message_ids", nargs=-1)
@click.option("--channel", default=None)
@click.option("--status", default=None, help="e.g. dead, failed")
@click.option("--since", default=None, help="e.g. 2h, 3d")
@click.option("--yes", is_flag=True, help="do not ask before a bulk replay")
@click.pass_obj
def replay(obj: CliContext, message_ids: tuple[str, ...], channel: str | None, status: str | None,
           since: str | None, yes: bool) -> None:
    """Send stored messages again as new messages linked to the originals (lineage)."""
    if not message_ids and not (channel or status or since):
        raise click.UsageError("give message ids, or --channel/--status/--since to select messages")
    selected = list(message_ids) or asyncio.run(_select(obj, channel, status, since))
    if not selected:
        click.echo("no messages match")
        return
    if not message_ids and not yes:
        click.confirm(f"replay {len(selected)} message(s)?", abort=True)
    for original, outcome in asyncio.run(_replay(obj, selected)):
        click.echo(f"{original} -> {outcome.message_id} {outcome.status}")


async def _select(obj: CliContext, channel: str | None, status: str | None, since: str | None) -> list[str]:
    store = await obj.open_store()
    try:
        views = await store.list_messages(
            channel=channel, status=status,
            since=datetime.now(UTC) - _parse_age(since) if since else None, limit=10_000,
        )
    finally:
        await store.close()
    return [view.id for view in reversed(views)]


async def _replay(obj: CliContext, ids: list[str]) -> list[tuple[str, Any]]:
    engine = await Engine.start(obj.config, pm=obj.pm, catalogue=obj.catalogue, base_dir=obj.base_dir,
                                run_outbox=False, run_sources=False)
    try:
        by = getpass.getuser()
        return [(message_id, await engine.replay(message_id, by=by)) for message_id in ids]
    finally:
        await engine.stop()


def _parse_age(text: str) -> timedelta:
    units = {"m": "minutes", "h": "hours", "d": "days"}
    try:
        return timedelta(**{units[text[-1]]: float(text[:-1])})
    except (KeyError, ValueError, IndexError):
        raise click.BadParameter(f"{text!r}: use a number and a unit: 30m, 2h, 7d") from None


commands = [run, demo, channels, breakers, suspend, resume, replay]
