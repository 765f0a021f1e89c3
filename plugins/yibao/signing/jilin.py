"""Jilin gateway: OAuth2 bearer token, SM4-encrypted `input`/`output`, SM2 `cainfo`.

Token: `POST {token_url}` with form fields username/password/scope/grant_type and
`Authorization: Basic b64(clientId:clientSecret)`; every call then sends
`Authorization: Bearer <access_token>`. With encryption on, `input` becomes
base64(SM4-ECB(key = clientId bytes, input JSON)), `cainfo` base64(SM3withSM2(input JSON,
userId = clientId)), `signtype` "SM2", and the extra field `encType` "SM4"; the centre's
`output` comes back encrypted the same way.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
import structlog

from engine.errors import PermanentError
from engine.transports import translate_errors
from plugins.yibao.signing.base import GatewaySigner
from plugins.yibao.signing.gm import sm2_sign, sm4_ecb_decrypt, sm4_ecb_encrypt

log = structlog.get_logger(__name__)

TOKEN_EARLY_RENEWAL_SECONDS = 60.0


def encrypt_json(key: bytes, value: Any) -> str:
    return base64.b64encode(sm4_ecb_encrypt(key, canonical_json(value))).decode()


def decrypt_json(key: bytes, text: str) -> Any:
    return json.loads(sm4_ecb_decrypt(key, base64.b64decode(text, validate=True)))


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class JilinSigner(GatewaySigner):
    scheme: ClassVar[str] = "jilin"

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        username: str,
        password: str,
        scope: str = "server",
        grant_type: str = "password",
        encrypt: bool = True,
        sm2_private_key: bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if encrypt and len(client_id.encode()) != 16:
            raise ValueError("with encryption on, client_id is the SM4 key and must have 16 bytes")
        if encrypt and sm2_private_key is None:
            raise ValueError("with encryption on, an SM2 private key is needed to sign cainfo")
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.username = username
        self._password = password
        self.scope = scope
        self.grant_type = grant_type
        self.encrypt = encrypt
        self._sm2_private_key = sm2_private_key
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def _key(self) -> bytes:
        return self.client_id.encode()

    def seal(self, envelope: dict[str, Any]) -> dict[str, Any]:
        if not self.encrypt:
            return envelope
        assert self._sm2_private_key is not None  # checked in __init__
        plain = canonical_json(envelope["input"])
        signature = sm2_sign(self._sm2_private_key, plain, uid=self._key)
        sealed = dict(envelope)
        sealed["input"] = base64.b64encode(sm4_ecb_encrypt(self._key, plain)).decode()
        sealed["cainfo"] = base64.b64encode(signature).decode()
        sealed["signtype"] = "SM2"
        sealed["encType"] = "SM4"
        return sealed

    def unseal(self, envelope: dict[str, Any]) -> dict[str, Any]:
        output = envelope.get("output")
        if not self.encrypt or not isinstance(output, str) or not output:
            return envelope
        try:
            plain = decrypt_json(self._key, output)
        except ValueError as exc:
            raise PermanentError(
                f"cannot decrypt the centre's SM4 output: {exc}", detail={"condition": "bad_envelope"}
            ) from exc
        return {**envelope, "output": plain}

    @property
    def renews_credentials(self) -> bool:
        return True

    def forget_credentials(self) -> None:
        self._token = None

    async def headers(self, body: bytes, http: httpx.AsyncClient) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self._access_token(http)}"}

    async def _access_token(self, http: httpx.AsyncClient) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                self._token, lifetime = await self._fetch_token(http)
                self._expires_at = self._clock() + max(lifetime - TOKEN_EARLY_RENEWAL_SECONDS, 1.0)
            return self._token

    async def _fetch_token(self, http: httpx.AsyncClient) -> tuple[str, float]:
        basic = base64.b64encode(f"{self.client_id}:{self._client_secret}".encode()).decode()
        form = {"username": self.username, "password": self._password, "scope": self.scope,
                "grant_type": self.grant_type}
        with translate_errors():
            response = await http.post(self.token_url, data=form, headers={"Authorization": f"Basic {basic}"})
        try:
            answer = response.json()
            token = str(answer["access_token"])
            lifetime = float(answer.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(
                f"the OAuth2 token endpoint refused us (HTTP {response.status_code})",
                detail={"condition": "oauth_token", "http_status": response.status_code,
                        "raw": response.text[:500]},
            ) from exc
        log.info("yibao.jilin.token_fetched", expires_in=lifetime)
        return token, lifetime
