"""The simulated gateway's checks of each scheme the adapter can sign with."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from plugins.yibao.signing.gm import sm2_verify
from plugins.yibao.signing.jilin import canonical_json, decrypt_json, encrypt_json
from plugins.yibao.signing.tif import tif_signature
from plugins.yibao.signing.zhejiang_sm3 import zhejiang_signature


class GatewayRefusal(Exception):
    """The gateway refuses the call before the centre sees it: HTTP `status`, `{code, message}`."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass
class GatewayAuth:
    scheme: Literal["none", "tif", "zhejiang_sm3", "jilin"] = "none"
    paasid: str = ""
    token: str = ""
    key: str = ""
    secret: str = ""
    client_id: str = ""
    client_secret: str = ""
    username: str = ""
    password: str = ""
    sm2_public_key: bytes | None = None
    encrypt: bool = True
    issued_tokens: set[str] = field(default_factory=set)

    def check(self, headers: Mapping[str, str], body: bytes) -> None:
        if self.scheme == "tif":
            self._check_tif(headers)
        elif self.scheme == "zhejiang_sm3":
            self._check_zhejiang(headers, body)
        elif self.scheme == "jilin":
            bearer = headers.get("authorization", "")
            if not bearer.startswith("Bearer ") or bearer[7:] not in self.issued_tokens:
                raise GatewayRefusal(401, "invalid_token: 令牌无效或已过期")

    def _check_tif(self, headers: Mapping[str, str]) -> None:
        if headers.get("x-tif-paasid") != self.paasid:
            raise GatewayRefusal(401, "paasid不存在!")
        expected = tif_signature(headers.get("x-tif-timestamp", ""), self.token, headers.get("x-tif-nonce", ""))
        if not secrets.compare_digest(headers.get("x-tif-signature", ""), expected):
            raise GatewayRefusal(401, "签名不一致!")

    def _check_zhejiang(self, headers: Mapping[str, str], body: bytes) -> None:
        if headers.get("x-ca-key") != self.key:
            raise GatewayRefusal(401, "x-ca-key不存在")
        given = headers.get("x-ca-signature", "")
        timestamp = given.split(":", 1)[0]
        if not secrets.compare_digest(given, zhejiang_signature(self.secret, timestamp, body)):
            raise GatewayRefusal(401, "签名验证失败")

    def issue_token(self, headers: Mapping[str, str], form: Mapping[str, Any]) -> str:
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization") != f"Basic {basic}":
            raise GatewayRefusal(401, "invalid_client")
        if form.get("username") != self.username or form.get("password") != self.password:
            raise GatewayRefusal(400, "invalid_grant: 用户名或密码错误")
        token = secrets.token_hex(16)
        self.issued_tokens.add(token)
        return token

    def open_input(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Decrypt and verify a Jilin `input`; other schemes pass through."""
        if self.scheme != "jilin" or envelope.get("encType") != "SM4":
            return envelope
        key = self.client_id.encode()
        try:
            plain = decrypt_json(key, str(envelope.get("input")))
        except ValueError as exc:
            raise GatewayRefusal(400, f"报文解密失败: {exc}") from exc
        if self.sm2_public_key is not None:
            signature = base64.b64decode(str(envelope.get("cainfo") or ""))
            if not sm2_verify(self.sm2_public_key, canonical_json(plain), signature, uid=key):
                raise GatewayRefusal(400, "验签失败")
        return {**envelope, "input": plain}

    def seal_output(self, answer: dict[str, Any]) -> dict[str, Any]:
        if self.scheme != "jilin" or not self.encrypt or answer.get("output") is None:
            return answer
        return {**answer, "output": encrypt_json(self.client_id.encode(), answer["output"])}
