"""Every hook a hisbridge plugin can implement, and nothing else.

Registration hooks (`hisbridge_register_*`) are called once when the engine starts and
build catalogues keyed by name; a duplicate name fails start-up and names both plugins.
Per-message hooks are for observers only: messages never fan out through the hook relay.
Call hooks with keyword arguments only, so a spec can grow without breaking plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from starlette.routing import BaseRoute

    from engine.adapters.base import Adapter
    from engine.attribution.rules import FaultRule
    from engine.demo.acts import DemoAct
    from engine.formats.base import PayloadFormat
    from engine.processors import Processor
    from engine.runtime import Engine
    from engine.sources import Source

PROJECT = "hisbridge"
hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def hisbridge_register_adapters() -> list[type[Adapter]]:
    """Return the adapter classes (destinations) this plugin contributes.

    Called once at start-up. Each class's `name` becomes the key used under
    `destinations[].adapter` in channel configs; a name registered by two plugins is a
    start-up error naming both.
    """


@hookspec
def hisbridge_register_sources() -> list[type[Source]]:
    """Return the source classes (listener kinds: MLLP, ASTM, table pollers) this plugin adds.

    Called once at start-up; each class's `kind` is the key under `source.kind`.
    """


@hookspec
def hisbridge_register_processors() -> list[type[Processor]]:
    """Return processor classes usable under a channel's `processors:` list.

    Called once at start-up; each class's `name` is its key.
    """


@hookspec
def hisbridge_register_fault_rules() -> list[FaultRule]:
    """Return fault-attribution rules (故障责任清单 entries) this plugin knows.

    Called once at start-up. Rules are data: match conditions over the failure facts and
    the party they blame. Plugin rules should use priorities below 1000 so they are tried
    before the engine's generic rules.
    """


@hookspec
def hisbridge_register_formats() -> list[PayloadFormat]:
    """Return payload formats (HL7, ASTM, a vendor XML) for show/diff.

    Called once per process that shows or diffs payloads; each format's `name` is its key.
    """


@hookspec
def hisbridge_register_commands(cli: click.Group) -> None:
    """Add subcommands to the `hisbridge` command line, e.g. `cli.add_command(my_group)`.

    Called once when the CLI starts, before arguments are parsed.
    """


@hookspec
def hisbridge_register_routes(engine: Engine) -> list[BaseRoute]:
    """Return Starlette routes to mount on the engine's HTTP API (under `/api/v1/`).

    Called once when the API starts. Routes get the same bearer-token authentication as
    the core API; use `engine.call()` / `engine.accept()` to run messages through channels
    so storage, breakers and attribution apply.
    """


@hookspec
def hisbridge_register_demo_acts() -> list[type[DemoAct]]:
    """Return `engine.demo.acts.DemoAct` classes: this plugin's part of `hisbridge demo`.

    Called once at start-up; each class's `name` is its key (`hisbridge demo --act NAME`).
    Acts run in registration order against the daemon started on the example `conf/`.
    """


@hookspec
def hisbridge_startup(engine: Engine) -> None:
    """Called once after the store is open and channels are built, before listeners start."""


@hookspec
def hisbridge_shutdown(engine: Engine) -> None:
    """Called once after listeners stopped and in-flight work drained, before the store closes."""


@hookspec
def hisbridge_message_finished(
    message_id: str, channel: str, destination: str, status: str, verdict: dict[str, Any] | None
) -> None:
    """Observer: a delivery reached a final status. Must be fast and must not raise."""
