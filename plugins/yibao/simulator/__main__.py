"""`python -m plugins.yibao.simulator --port 8089 [--tif-paasid P --tif-token-env VAR]`."""

from __future__ import annotations

import argparse
import asyncio
import os

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
    asyncio.run(_serve(CentreSimulator(admvs=args.admvs, auth=auth), args.host, args.port))


async def _serve(simulator: CentreSimulator, host: str, port: int) -> None:
    server = SimulatorServer(simulator, host=host, port=port)
    await server.start()
    print(f"yibao centre simulator on {server.url}", flush=True)
    try:
        await server.wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    main()
