"""A LIS stand-in for the demo and tests: takes result documents and answers order queries.

    POST /results   a result document from `lis_http` (kept in `results`)
    POST /orders    a host query from `mllp_lis` or an ASTM source (kept in `queries`),
                    answered {"orders": [...]} for the barcodes it knows

Run it in process: `async with LocalServer(LisStandIn(orders).app(), port=...)`.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class LisStandIn:
    def __init__(self, orders: dict[str, dict[str, Any]]) -> None:
        self.orders = orders
        self.results: list[dict[str, Any]] = []
        self.queries: list[dict[str, Any]] = []

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/results", self._results, methods=["POST"]),
                Route("/orders", self._orders, methods=["POST"]),
            ]
        )

    async def _results(self, request: Request) -> JSONResponse:
        document = await request.json()
        self.results.append(document)
        return JSONResponse({"accepted": len(document.get("results", []))})

    async def _orders(self, request: Request) -> JSONResponse:
        query = await request.json()
        self.queries.append(query)
        found = [self.orders[code] for code in query.get("barcodes", []) if code in self.orders]
        return JSONResponse({"orders": found})
