"""`hisbridge simulate drug-trace` (also `python -m plugins.drug_trace.simulator`): the
simulated 码上放心 TOP gateway until Ctrl-C; packages come from `--packages FILE` (JSON,
as for `POST /_sim/packages`) or are posted while it runs.

`simulate` is a group plugins share: the first plugin to register adds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path

import click

from engine.cli import simulate_group


@click.command("drug-trace")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8093, show_default=True)
@click.option("--app-key", default="23000001", show_default=True)
@click.option("--secret-env", default="HISBRIDGE_SIM_TOP_SECRET", show_default=True,
              help="variable holding the app secret (unset: testsecret)")
@click.option("--packages", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help='JSON {"<case code>": ["<small code>", ...] | {"<middle>": ["<small>", ...]}}')
def simulate_drug_trace(host: str, port: int, app_key: str, secret_env: str, packages: Path | None) -> None:
    """Run the simulated 码上放心 relation query gateway (TOP, md5/hmac sign)."""
    from engine.serving import serve_until_signalled
    from plugins.drug_trace.simulator.relations import RelationServer, RelationSimulator

    simulator = RelationSimulator(app_key=app_key, secret=os.environ.get(secret_env, "testsecret"))
    if packages is not None:
        for code, children in json.loads(packages.read_text(encoding="utf-8")).items():
            simulator.add_package(code, children)
    server = RelationServer(simulator, host=host, port=port)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_signalled(server, lambda s: f"码上放心 TOP simulator on {s.url}/router/rest"))


def register(cli: click.Group) -> None:
    simulate_group(cli).add_command(simulate_drug_trace)
