"""`python -m plugins.e_invoice.simulator --port 8091 [--appid A --key-env VAR]`."""

from __future__ import annotations

import argparse
import asyncio
import os

from plugins.e_invoice.simulator import PlatformServer, PlatformSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description="simulated fiscal e-invoice platform (Bosssoft style)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--appid", default="TESTAPPID0001")
    parser.add_argument("--key-env", default="HISBRIDGE_SIM_EINVOICE_KEY",
                        help="variable holding the appid's key (default key: testkey123)")
    args = parser.parse_args()
    simulator = PlatformSimulator(appid=args.appid, key=os.environ.get(args.key_env, "testkey123"))
    asyncio.run(_serve(PlatformServer(simulator, host=args.host, port=args.port)))


async def _serve(server: PlatformServer) -> None:
    await server.start()
    print(f"e-invoice platform simulator on {server.base_url}", flush=True)
    try:
        await server.wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    main()
