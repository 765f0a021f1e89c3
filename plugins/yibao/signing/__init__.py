"""Gateway signing schemes, chosen per deployment under the adapter's `signing:` block.

`scheme: none | tif | zhejiang_sm3 | jilin`; secrets are `$env`/`$file` references resolved
when the adapter is built (`build_signer`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.config.model import SecretRef
from engine.config.secrets import resolve
from plugins.yibao.signing.base import GatewaySigner
from plugins.yibao.signing.jilin import JilinSigner
from plugins.yibao.signing.tif import TifSigner
from plugins.yibao.signing.zhejiang_sm3 import ZhejiangSm3Signer


class _Scheme(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoSigning(_Scheme):
    scheme: Literal["none"] = "none"


class TifSigning(_Scheme):
    scheme: Literal["tif"]
    paasid: str = Field(description="x-tif-paasid issued by the province, e.g. mbs_fsi_auth")
    token: SecretRef = Field(description="paasToken shared with the gateway")
    service_id: str | None = Field(None, description="x-tif-serviceId, only where the gateway wants it")


class ZhejiangSigning(_Scheme):
    scheme: Literal["zhejiang_sm3"]
    key: str | None = Field(None, description="x-ca-key; defaults to fixmedins_code")
    secret: SecretRef = Field(description="HMAC-SM3 secret")
    body_encoding: Literal["utf-8", "gb2312"] = Field("utf-8", description="bytes the signature is computed over")


class JilinSigning(_Scheme):
    scheme: Literal["jilin"]
    token_path: str = Field("/auth/oauth/token", description="OAuth2 token endpoint, relative to base_url")
    client_id: str = Field(description="OAuth2 client id; also the SM4 key and SM2 user id (16 bytes)")
    client_secret: SecretRef
    username: str
    password: SecretRef
    scope: str = "server"
    encrypt: bool = Field(True, description="SM4 input/output and SM2 cainfo")
    sm2_private_key: SecretRef | None = Field(None, description="hex SM2 private key signing cainfo")


SigningConfig = Annotated[
    NoSigning | TifSigning | ZhejiangSigning | JilinSigning, Field(discriminator="scheme")
]


def build_signer(
    config: NoSigning | TifSigning | ZhejiangSigning | JilinSigning,
    *,
    base_url: str,
    fixmedins_code: str,
    base_dir: Path | None = None,
) -> GatewaySigner:
    """The signer for a deployment, its secrets resolved now (ConfigError names what is missing)."""
    if isinstance(config, TifSigning):
        return TifSigner(paasid=config.paasid, token=resolve(config.token, base_dir), service_id=config.service_id)
    if isinstance(config, ZhejiangSigning):
        return ZhejiangSm3Signer(
            key=config.key or fixmedins_code,
            secret=resolve(config.secret, base_dir),
            body_encoding=config.body_encoding,
        )
    if isinstance(config, JilinSigning):
        private_key = (
            bytes.fromhex(resolve(config.sm2_private_key, base_dir).strip())
            if config.sm2_private_key is not None
            else None
        )
        return JilinSigner(
            token_url=base_url.rstrip("/") + config.token_path,
            client_id=config.client_id,
            client_secret=resolve(config.client_secret, base_dir),
            username=config.username,
            password=resolve(config.password, base_dir),
            scope=config.scope,
            encrypt=config.encrypt,
            sm2_private_key=private_key,
        )
    return GatewaySigner()


__all__ = [
    "GatewaySigner",
    "JilinSigner",
    "JilinSigning",
    "NoSigning",
    "SigningConfig",
    "TifSigner",
    "TifSigning",
    "ZhejiangSigning",
    "ZhejiangSm3Signer",
    "build_signer",
]
