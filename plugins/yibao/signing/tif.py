"""TIF gateway headers (Hebei and others).

`x-tif-signature = lowercase_hex(SHA-256(timestamp + token + nonce + timestamp))` with the
timestamp in Unix seconds; the body is not signed.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import ClassVar

import httpx

from plugins.yibao.signing.base import GatewaySigner


def tif_signature(timestamp: str, token: str, nonce: str) -> str:
    return hashlib.sha256(f"{timestamp}{token}{nonce}{timestamp}".encode()).hexdigest()


def tif_nonce() -> str:
    """`hex(ms)-hex(rand24)`, one of the two nonce shapes seen in real integrations."""
    return f"{int(time.time() * 1000):x}-{secrets.randbits(24):06x}"


class TifSigner(GatewaySigner):
    scheme: ClassVar[str] = "tif"

    def __init__(
        self,
        *,
        paasid: str,
        token: str,
        service_id: str | None = None,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = tif_nonce,
    ) -> None:
        self.paasid = paasid
        self._token = token
        self.service_id = service_id
        self._clock = clock
        self._nonce = nonce

    async def headers(self, body: bytes, http: httpx.AsyncClient) -> dict[str, str]:
        timestamp = str(int(self._clock()))
        nonce = self._nonce()
        headers = {
            "x-tif-paasid": self.paasid,
            "x-tif-timestamp": timestamp,
            "x-tif-nonce": nonce,
            "x-tif-signature": tif_signature(timestamp, self._token, nonce),
        }
        if self.service_id:
            headers["x-tif-serviceId"] = self.service_id
        return headers
