"""`DrugTraceRelationAdapter` (sync): HIS scans a large-package code at the pharmacy window
and asks for the small-package codes under it, answered by the 码上放心 relation query.

HIS sends `{"code": "8..."}` and gets `{"code": ..., "small_codes": [...]}`. The query is
safe to repeat; answers are cached in the adapter (relations do not change once packed).
"""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field

from engine.adapters.base import Adapter, AdapterConfig, AdapterServices, Wire
from engine.errors import InputError
from engine.message import Delivery, Payload
from plugins.drug_trace.codes import DEFAULT_PATTERN
from plugins.drug_trace.settings import BaseDirConfig, TopAccess


class RelationConfig(BaseDirConfig, TopAccess):
    code_pattern: str = Field(DEFAULT_PATTERN, description="regular expression a queried code must match")


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
        self.relations = config.relations(services, config.base_dir)

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
