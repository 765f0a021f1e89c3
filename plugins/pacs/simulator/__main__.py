"""`python -m plugins.pacs.simulator --port 8091`: the simulated PACS until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio

from plugins.pacs.simulator import PacsServer, PacsSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description="simulated PACS (SOAP exam orders with a WSDL, REST)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091, help="0 picks a free port")
    args = parser.parse_args()
    asyncio.run(_serve(args.host, args.port))


async def _serve(host: str, port: int) -> None:
    server = PacsServer(PacsSimulator(), host=host, port=port)
    await server.start()
    print(f"PACS simulator on {server.url} (WSDL {server.wsdl_url}, REST {server.rest_url})", flush=True)
    try:
        await server.wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    main()
