"""What a gateway signing scheme does to one call, whatever the province.

A scheme may change the envelope before it is serialised (`seal`: Jilin encrypts `input`
and signs it into `cainfo`), adds headers computed over the serialised body (`headers`:
TIF, Zhejiang, a Jilin bearer token), and may change the answer's envelope back
(`unseal`: Jilin decrypts `output`). Secrets are resolved before a signer is built.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx


class GatewaySigner:
    """The `none` scheme, and the base every other scheme overrides."""

    scheme: ClassVar[str] = "none"

    def seal(self, envelope: dict[str, Any]) -> dict[str, Any]:
        return envelope

    async def headers(self, body: bytes, http: httpx.AsyncClient) -> dict[str, str]:
        return {}

    def unseal(self, envelope: dict[str, Any]) -> dict[str, Any]:
        return envelope

    @property
    def renews_credentials(self) -> bool:
        """True when a 401 may be cured by fetching credentials again (`forget_credentials`)."""
        return False

    def forget_credentials(self) -> None:
        """Drop cached credentials so the next `headers()` fetches new ones."""
