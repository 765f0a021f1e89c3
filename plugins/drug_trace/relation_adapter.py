"""`DrugTraceRelationAdapter` (sync): HIS scans a large-package code at the pharmacy window
and asks for the small-package codes under it, answered by the 码上放心 relation query.

HIS sends `{"code": "8..."}` and gets `{"code": ..., "small_codes": [...]}`. The query is
safe to repeat; answers are cached in the adapter (relations do not change once packed).
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field

from engine.adapters.base import Adapter, AdapterConfig, AdapterServices, Wire
from engine.config.model import SecretRef
from engine.config.secrets import resolve
from engine.errors import InputError
from engine.message import Delivery, Payload
from plugins.drug_trace.codes import DEFAULT_PATTERN
from plugins.drug_trace.settings import BaseDirConfig
from plugins.drug_trace.top import CodeRelations, TopClient


class RelationConfig(BaseDirConfig):
    gateway_url: str = Field(
        description="TOP gateway", examples=["https://eco.taobao.com/router/rest"], pattern=r"^https?://"
    )
    app_key: str = Field(min_length=1, description="TOP app key")
    app_secret: SecretRef = Field(description="TOP app secret", examples=[{"$env": "ALIHEALTH_APP_SECRET"}])
    sign_method: Literal["md5", "hmac"] = "md5"
    ref_ent_id: str = Field(min_length=1, description="the hospital's 码上放心 enterprise id (ref_ent_id)")
    code_pattern: str = Field(DEFAULT_PATTERN, description="regular expression a queried code must match")
    cache_size: int = Field(10_000, ge=0, description="codes whose expansion is kept in memory")
    timeout: float = Field(10.0, gt=0, description="seconds to wait for the gateway")


class DrugTraceRelationAdapter(Adapter):
    name: ClassVar[str] = "drug_trace_relation"
    Config: ClassVar[type[AdapterConfig]] = RelationConfig
    delivery: ClassVar[Delivery] = Delivery.SYNC
    idempotent: ClassVar[bool] = True
    business_keys: ClassVar[tuple[str, ...]] = ("trace_code",)
    description: ClassVar[str] = "码上放心 relation query: a large-package trace code → its small-package codes"

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        super().__init__(config, services)
        assert isinstance(config, RelationConfig)
        self.pattern = re.compile(config.code_pattern)
        client = TopClient(
            http=services.http_client(timeout=config.timeout), gateway_url=config.gateway_url,
            app_key=config.app_key, secret=resolve(config.app_secret, config.base_dir),
            sign_method=config.sign_method,
        )
        self.relations = CodeRelations(client, ref_ent_id=config.ref_ent_id, cache_size=config.cache_size)

    def transform(self, request: Payload) -> Payload:
        try:
            call = request.json()
        except ValueError as exc:
            raise InputError(f"body is not JSON: {exc}", field="body") from exc
        code = call.get("code") if isinstance(call, dict) else None
        if not isinstance(code, str) or not self.pattern.fullmatch(code):
            raise InputError(f"not a trace code (expected {self.pattern.pattern})", field="code")
        return Payload.from_json({"code": code})

    def extract_keys(self, request: Payload) -> dict[str, str]:
        try:
            call = request.json()
        except ValueError:
            return {}
        code = call.get("code") if isinstance(call, dict) else None
        return {"trace_code": code} if isinstance(code, str) else {}

    async def send(self, request: Payload, wire: Wire) -> Payload:
        code = str(request.json()["code"])
        return Payload.from_json({"code": code, "small_codes": await self.relations.smallest_codes(code, wire)})
