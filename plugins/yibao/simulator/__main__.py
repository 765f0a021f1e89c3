"""`python -m plugins.yibao.simulator --port 8089 [--tif-paasid P --tif-token-env VAR]`."""

from __future__ import annotations

import argparse
import asyncio
import os

from engine.serving import serve_until_signalled
from plugins.yibao.simulator import CentreSimulator, GatewayAuth, SimulatorServer


def main() -> None:
    parser = argparse.ArgumentParser(description="simulated national medical-insurance centre")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--admvs", default="440300", help="the centre's area code")
    parser.add_argument("--tif-paasid", help="require TIF headers with this paasid")
    parser.add_argument("--tif-token-env", default="HISBRIDGE_SIM_TIF_TOKEN", help="variable holding the TIF token")
    args = parser.parse_args()
    auth = GatewayAuth()
    if args.tif_paasid:
        auth = GatewayAuth(scheme="tif", paasid=args.tif_paasid, token=os.environ[args.tif_token_env])
    server = SimulatorServer(CentreSimulator(admvs=args.admvs, auth=auth), host=args.host, port=args.port)
    asyncio.run(serve_until_signalled(server, lambda running: f"yibao centre simulator on {running.url}"))


if __name__ == "__main__":
    main()
