"""Zhejiang gateway headers: `x-ca-key` and `x-ca-signature = ts:UPPERHEX(HMAC-SM3(secret, ts + "\\n" + body))`.

The vendor DLL hashes the GB2312 bytes of the body; `body_encoding` reproduces that (the
bytes sent stay UTF-8 JSON; for ASCII bodies both give the same value).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

import httpx

from plugins.yibao.signing.base import GatewaySigner
from plugins.yibao.signing.gm import hmac_sm3


def zhejiang_signature(secret: str, timestamp: str, body_bytes: bytes) -> str:
    mac = hmac_sm3(secret.encode(), timestamp.encode() + b"\n" + body_bytes)
    return f"{timestamp}:{mac.hex().upper()}"


class ZhejiangSm3Signer(GatewaySigner):
    scheme: ClassVar[str] = "zhejiang_sm3"

    def __init__(
        self,
        *,
        key: str,
        secret: str,
        body_encoding: str = "utf-8",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self._secret = secret
        self.body_encoding = body_encoding
        self._clock = clock

    async def headers(self, body: bytes, http: httpx.AsyncClient) -> dict[str, str]:
        signed = body if self.body_encoding == "utf-8" else body.decode().encode(self.body_encoding, errors="replace")
        return {
            "x-ca-key": self.key,
            "x-ca-signature": zhejiang_signature(self._secret, str(int(self._clock())), signed),
        }
