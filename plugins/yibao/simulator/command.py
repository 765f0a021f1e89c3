"""`hisbridge simulate yibao` (= `python -m plugins.yibao.simulator`): the simulated centre as a
process, on uvloop like the daemon where it is installed.

    hisbridge simulate yibao [--port 8089] [--admvs 440300] [--tif-paasid P [--tif-token-env VAR]]
"""

from __future__ import annotations

import os

import click

from engine.serving import serve_until_signalled
from plugins.yibao.simulator import CentreSimulator, GatewayAuth, SimulatorServer


@click.command("yibao")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8089, show_default=True)
@click.option("--admvs", default="440300", show_default=True, help="the centre's area code")
@click.option("--tif-paasid", help="require TIF headers with this paasid")
@click.option("--tif-token-env", default="HISBRIDGE_SIM_TIF_TOKEN", show_default=True,
              help="variable holding the TIF token")
def simulate_yibao(host: str, port: int, admvs: str, tif_paasid: str | None, tif_token_env: str) -> None:
    """Run the simulated national medical-insurance centre until Ctrl-C or SIGTERM."""
    from engine.cli.ops_commands import run_event_loop  # lazily: the CLI's loop choice

    auth = GatewayAuth()
    if tif_paasid:
        token = os.environ.get(tif_token_env)
        if not token:
            raise click.UsageError(f"--tif-paasid needs the TIF token in ${tif_token_env}")
        auth = GatewayAuth(scheme="tif", paasid=tif_paasid, token=token)
    server = SimulatorServer(CentreSimulator(admvs=admvs, auth=auth), host=host, port=port)
    run_event_loop(serve_until_signalled(server, lambda running: f"yibao centre simulator on {running.url}"))
