"""What the drug_trace adapters' configs share: paths and secrets relative to the base dir,
and the 码上放心 gateway settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from engine.adapters.base import AdapterConfig, AdapterServices
from engine.config.model import SecretRef
from engine.config.secrets import resolve
from plugins.drug_trace.top import CodeRelations, TopClient


class BaseDirConfig(AdapterConfig):
    """An adapter config whose relative paths start at the deployment's base dir (the
    parent of conf/), like the engine's SQLite files and `$file` secrets."""

    _base_dir: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _remember_base_dir(self, info: ValidationInfo) -> BaseDirConfig:
        context = info.context if isinstance(info.context, dict) else {}
        base_dir = context.get("base_dir")
        self._base_dir = Path(base_dir) if base_dir else None
        return self

    @property
    def base_dir(self) -> Path | None:
        return self._base_dir

    def path(self, name: str) -> Path:
        path = Path(name)
        return path if path.is_absolute() or self._base_dir is None else self._base_dir / path


class TopAccess(BaseModel):
    """How to reach the 码上放心 relation query: the TOP gateway, the app and the hospital's
    enterprise id. Used by the `drug_trace_relation` adapter and, as `relation`, by the
    `drug_trace` adapter to expand case codes inside a sale."""

    model_config = ConfigDict(extra="forbid")

    gateway_url: str = Field(
        description="TOP gateway", examples=["https://eco.taobao.com/router/rest"], pattern=r"^https?://"
    )
    app_key: str = Field(min_length=1, description="TOP app key")
    app_secret: SecretRef = Field(description="TOP app secret", examples=[{"$env": "ALIHEALTH_APP_SECRET"}])
    sign_method: Literal["md5", "hmac"] = "md5"
    ref_ent_id: str = Field(min_length=1, description="the hospital's 码上放心 enterprise id (ref_ent_id)")
    cache_size: int = Field(10_000, ge=0, description="codes whose expansion is kept in memory")
    timeout: float = Field(10.0, gt=0, description="seconds to wait for the gateway")

    def relations(self, services: AdapterServices, base_dir: Path | None) -> CodeRelations:
        """A cached relation client for these settings (the secret resolved now)."""
        client = TopClient(
            http=services.http_client(timeout=self.timeout), gateway_url=self.gateway_url,
            app_key=self.app_key, secret=resolve(self.app_secret, base_dir), sign_method=self.sign_method,
        )
        return CodeRelations(client, ref_ent_id=self.ref_ent_id, cache_size=self.cache_size)
