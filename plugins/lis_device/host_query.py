"""Answer an analyser's ASTM host query (Q record) with the LIS's orders, in time, always.

The query goes to the LIS order service through `OrderLookup` (see `order_lookup`) as

    {"kind": "astm_host_query", "barcodes": ["BC0001"], "tests": ["ALL"],
     "instrument": "Mindray", "status_code": "O", "transcript": "\u0005\u00021H|..."}

carrying the device's bytes losslessly (latin-1) for the record. Route it with a
destination filter `{path: $.kind, equals: astm_host_query}` (and keep results away from
the order service with `{path: H.2, regex: .}`). The orders become an order download
(H, P, O ... L); when there are none, or the LIS failed or was too slow, the device gets
H + `L|1|I` ("no information") before its own timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from engine.errors import InputError
from engine.sources import Call
from plugins.lis_device.astm.queries import OrderRequest, build_order_download, read_queries
from plugins.lis_device.astm.records import STANDARD_DELIMITERS, AstmMessage
from plugins.lis_device.order_lookup import OrderLookup

log = structlog.get_logger(__name__)

ASTM_CONTENT_TYPE = "application/x-astm"
QUERY_KIND = "astm_host_query"


class HostQueryAnswerer:
    """Turns one query transcript into the records to send back (see module docstring)."""

    def __init__(
        self,
        call: Call,
        *,
        timeout: float,
        charset: str,
        sender: str,
        channel: str,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._lookup = OrderLookup(call, timeout=timeout, channel=channel)
        self._charset = charset
        self._sender = sender
        self._channel = channel
        self._clock = clock

    async def answer(self, transcript: bytes, text: bytes) -> bytes:
        try:
            query = AstmMessage.parse(text, self._charset)
        except InputError as exc:
            log.warning("astm host query unreadable; answered no orders", channel=self._channel, error=str(exc))
            return self._download([], None)
        queries = read_queries(query)
        barcodes = [code for q in queries for code in q.barcodes]
        header = query.record("H")
        request = {
            "kind": QUERY_KIND,
            "barcodes": barcodes,
            "tests": [test for q in queries for test in q.test_ids if test],
            "instrument": header.value(5, component=1) if header is not None else "",
            "status_code": queries[0].status_code if queries else "",
            "transcript": transcript.decode("latin-1"),
        }
        found = await self._lookup.find(request, barcodes)
        return self._download(found.orders, query)

    async def drain(self) -> None:
        """Wait for calls that outlived their answer (at stop), so their outcome is stored."""
        await self._lookup.drain()

    def _download(self, orders: list[OrderRequest], query: AstmMessage | None) -> bytes:
        header = query.record("H") if query is not None else None
        download = build_order_download(
            orders,
            now=self._clock(),
            delimiters=query.delimiters if query is not None else STANDARD_DELIMITERS,
            sender=self._sender,
            receiver=header.value(5, component=1) if header is not None else "",
        )
        return download.text().encode(self._charset)
