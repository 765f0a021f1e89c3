"""The `hisbridge` command line.

Core commands live in the modules named in CORE_COMMAND_MODULES (each exposes a list
`commands` of click commands); plugins add theirs through `hisbridge_register_commands`.
Each invocation builds its own plugin manager and works on a copy of the group, so plugin
commands never leak from one invocation (or test) into the next.

Errors the user can fix (invalid config, a broken plugin, a missing store) print what to fix,
without a traceback, and exit with status 2.
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, NoReturn

import click
import pluggy
import structlog

from engine.catalogue import Catalogue, hisbridge_version
from engine.config import loader
from engine.config.model import EngineConfig, LoggingSettings
from engine.errors import ConfigError, EngineError, PluginError, StoreError
from engine.logging import configure_logging
from engine.plugin_manager import create_plugin_manager
from engine.store.store import MessageStore

log = structlog.get_logger(__name__)

CORE_COMMAND_MODULES: tuple[str, ...] = (
    "engine.cli.config_commands",
    "engine.cli.ops_commands",
    "engine.cli.explain",
    "engine.cli.blobs",
)
"""Modules whose `commands` list is added to `hisbridge`; add one line per module."""

DISABLE_PLUGINS_ENV = "HISBRIDGE_DISABLE_PLUGINS"
"""Comma-separated plugin names not to load (entry-point or built-in module names)."""

EXIT_USER_ERROR = 2

LogLevel = Literal["debug", "info", "warning", "error"]
_VERBOSITY: tuple[LogLevel, ...] = ("warning", "info", "debug")


SIMULATE_GROUP = "simulate"


def simulate_group(cli: click.Group) -> click.Group:
    """The `hisbridge simulate` group, where plugins add the simulators of their remote systems
    (`simulate_group(cli).add_command(my_simulator)` in `hisbridge_register_commands`); the
    first plugin to ask creates it."""
    group = cli.commands.get(SIMULATE_GROUP)
    if not isinstance(group, click.Group):
        group = click.Group(SIMULATE_GROUP, help="Run a simulated remote system for tests and demos.")
        cli.add_command(group)
    return group


class CliContext:
    """`ctx.obj` of every command: the conf dir and, built on first use, the config, plugin
    manager and catalogue. Loading the config validates it against the catalogue."""

    def __init__(self, pm: pluggy.PluginManager, conf_dir: Path = Path("conf")) -> None:
        self.pm = pm
        self.conf_dir = conf_dir
        self.log_level: LogLevel = "warning"

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue.build(self.pm)

    @cached_property
    def config(self) -> EngineConfig:
        config = loader.load_config(self.conf_dir, catalogue=self.catalogue)
        self.configure_logging(config.logging.redact_fields)
        return config

    def configure_logging(self, redact_fields: list[str] | None = None) -> None:
        """Console logging at the CLI's level (warning unless -v), masking the configured
        fields once the config is known. The daemon command configures its own."""
        settings = LoggingSettings(level=self.log_level)
        if redact_fields is not None:
            settings = settings.model_copy(update={"redact_fields": redact_fields})
        configure_logging(settings, json_lines=False)

    @property
    def base_dir(self) -> Path:
        """Where relative config paths start: the directory containing the conf dir."""
        return loader.base_dir(self.conf_dir)

    async def open_store(self, *, migrate: bool = True) -> MessageStore:
        """Open the configured message store; the caller closes it. A SQLite file that does
        not exist yet is a StoreError: the daemon creates the store, the CLI only reads it."""
        url = self.config.store.url
        sqlite_file = loader.sqlite_file(url)
        if sqlite_file is not None and not sqlite_file.exists():
            raise StoreError(
                f"no message store at {sqlite_file}: start the daemon once (`hisbridge run`) "
                f"to create it, or point store.url in {self.conf_dir / loader.DAEMON_FILE} "
                f"at the daemon's store"
            )
        return await MessageStore.open(url, migrate=migrate)


class HisbridgeGroup(click.Group):
    """The root group: builds the plugin manager before parsing (so plugin commands show in
    `--help`) and turns fixable EngineErrors into a message and exit status 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        configure_logging(LoggingSettings(level="warning"), json_lines=False)
        obj = kwargs.get("obj")
        if obj is None:
            try:
                obj = CliContext(create_plugin_manager(disabled=_disabled_from_env()))
            except PluginError as exc:
                _fail(exc)
            kwargs["obj"] = obj
        cli = copy.copy(self)
        cli.commands = dict(self.commands)
        try:
            obj.pm.hook.hisbridge_register_commands(cli=cli)
        except Exception as exc:  # noqa: BLE001 - a plugin may raise anything; the CLI names it and exits
            _fail(PluginError(f"a plugin failed to add its commands: {exc!r}"))
        return click.Group.main(cli, *args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EngineError as exc:
            _fail(exc)


def _disabled_from_env() -> list[str]:
    names = os.environ.get(DISABLE_PLUGINS_ENV, "").split(",")
    return [name.strip() for name in names if name.strip()]


def _fail(exc: EngineError) -> NoReturn:
    if isinstance(exc, ConfigError):
        click.echo(f"error: the configuration has {len(exc.problems)} problem(s):", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        click.echo("fix them and run `hisbridge check-config` again", err=True)
    elif isinstance(exc, PluginError):
        click.echo(f"error: {exc}", err=True)
        click.echo(
            f"fix or uninstall the plugin, or skip it with {DISABLE_PLUGINS_ENV}=<plugin name>",
            err=True,
        )
    else:
        click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_USER_ERROR)


@click.group(cls=HisbridgeGroup)
@click.option(
    "--conf",
    "conf_dir",
    envvar="HISBRIDGE_CONF",
    default="conf",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="config directory (hisbridge.yaml and channels/); env HISBRIDGE_CONF",
)
@click.option("-v", "--verbose", count=True, help="log progress to stderr (-v info, -vv debug)")
@click.version_option(version=hisbridge_version(), message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context, conf_dir: Path, verbose: int) -> None:
    """hisbridge: the integration engine beside the HIS."""
    ctx.obj.conf_dir = conf_dir
    ctx.obj.log_level = _VERBOSITY[min(verbose, 2)]
    ctx.obj.configure_logging()


for _module_name in CORE_COMMAND_MODULES:
    for _command in importlib.import_module(_module_name).commands:
        main.add_command(_command)
