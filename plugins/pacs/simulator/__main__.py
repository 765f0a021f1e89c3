"""`python -m plugins.pacs.simulator --port 8091 --hl7-port 2576`: the simulated PACS until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio

from plugins.pacs.simulator.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description="simulated PACS (SOAP exam orders with a WSDL, REST)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091, help="HTTP port (SOAP, REST); 0 picks a free port")
    parser.add_argument("--hl7-port", type=int, default=2576, help="MLLP port for ORM^O01 orders; 0 picks one")
    parser.add_argument("--report-hl7", help="host:port of the engine's pacs_oru source (ORU^R01 reports)")
    parser.add_argument("--report-url", help="URL of the engine's pacs_report_http source (SOAP/REST reports)")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.hl7_port, report_hl7=args.report_hl7, report_url=args.report_url))


if __name__ == "__main__":
    main()
