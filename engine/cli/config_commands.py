"""`hisbridge check-config`, `hisbridge plugins` and `hisbridge docs`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
import structlog

from engine.catalogue import KINDS, plugins_report
from engine.config.loader import delivery_of, resolve_tokens
from engine.config.reference import render_reference
from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.cli import CliContext

log = structlog.get_logger(__name__)


@click.command("check-config")
@click.pass_obj
def check_config(obj: CliContext) -> None:
    """Validate the conf dir against the schemas and the registered plugins.

    Prints every problem with its path and exits with status 2 when there is any;
    otherwise prints the channels and their destinations.
    """
    config = obj.config
    click.echo(f"{obj.conf_dir}: configuration is valid, {len(config.channels)} channel(s)")
    for channel in config.channels.values():
        steps = [channel.source.kind, *(spec.name for spec in channel.processors)]
        click.echo(f"  {channel.name}: {' -> '.join(steps)}")
        for destination in channel.destinations:
            delivery = delivery_of(obj.catalogue, destination).value
            click.echo(f"    -> {destination.name} ({destination.adapter}, {delivery})")
    try:
        resolve_tokens(config.api, obj.base_dir)
    except ConfigError as exc:
        click.echo(
            "warning: the daemon will not start until these secrets are available:", err=True
        )
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.pass_obj
def plugins(obj: CliContext, as_json: bool) -> None:
    """List loaded plugins, their versions, hooks and what they contribute."""
    report = plugins_report(obj.pm, obj.catalogue)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    for entry in report:
        version = entry["version"] or "-"
        origin = entry["distribution"] or "registered in-process"
        click.echo(f"{entry['name']}  {version}  ({origin})")
        click.echo(f"    hooks: {', '.join(entry['hooks']) or '-'}")
        for kind in KINDS:
            if kind == "fault_rules" and entry[kind]:
                click.echo(f"    fault rules: {len(entry[kind])}")
            elif entry[kind]:
                click.echo(f"    {kind.replace('_', ' ')}: {', '.join(entry[kind])}")


@click.command("docs")
@click.option(
    "--out",
    "out_dir",
    default="docs/reference",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="directory of the reference pages",
)
@click.option("--check", is_flag=True, help="write nothing; exit 1 when a page is stale")
@click.pass_obj
def docs(obj: CliContext, out_dir: Path, check: bool) -> None:
    """Generate the configuration and adapter reference from the schemas."""
    pages = render_reference(obj.pm, obj.catalogue)
    stale = [
        out_dir / name
        for name, text in pages.items()
        if not (out_dir / name).is_file() or (out_dir / name).read_text(encoding="utf-8") != text
    ]
    if check:
        for path in stale:
            click.echo(f"stale: {path} (run `hisbridge docs` and commit the result)", err=True)
        if stale:
            raise SystemExit(1)
        click.echo(f"{out_dir}: reference pages are up to date")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.write_text(pages[path.name], encoding="utf-8")
        click.echo(f"wrote {path}")
    if not stale:
        click.echo(f"{out_dir}: reference pages are up to date")


commands = [check_config, plugins, docs]
