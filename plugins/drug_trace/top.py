"""The Taobao Open Platform (TOP) gateway as 码上放心 uses it: signed form posts, and the
single-code relation query that expands a large-package code into its small-package codes.

Sign: all parameters but `sign` sorted by key, concatenated `key1value1key2value2…`;
`md5` is UPPER(MD5(secret + text + secret)), `hmac` is UPPER(HMAC-MD5(secret, text)).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import httpx
import structlog

from engine.adapters.base import Wire
from engine.errors import InputError, PermanentError, TransientError
from engine.transports.http import exchange

log = structlog.get_logger(__name__)

RELATION_METHOD = "alibaba.alihealth.drugtrace.top.yljg.query.relation"
CHINA_TIME = timezone(timedelta(hours=8))
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
SignMethod = Literal["md5", "hmac"]
CODE_UNKNOWN = "E"


def sign_text(params: Mapping[str, str]) -> str:
    return "".join(f"{key}{params[key]}" for key in sorted(params) if key != "sign")


def top_sign(params: Mapping[str, str], secret: str, sign_method: SignMethod) -> str:
    text = sign_text(params)
    if sign_method == "md5":
        return hashlib.md5(f"{secret}{text}{secret}".encode()).hexdigest().upper()
    return hmac.new(secret.encode(), text.encode(), hashlib.md5).hexdigest().upper()


def response_root(method: str) -> str:
    return method.replace(".", "_") + "_response"


@dataclass
class TopClient:
    """Signed calls to one TOP gateway as one app."""

    http: httpx.AsyncClient
    gateway_url: str
    app_key: str
    secret: str
    sign_method: SignMethod = "md5"
    clock: Callable[[], datetime] = lambda: datetime.now(CHINA_TIME)

    def signed_params(self, method: str, business: Mapping[str, str]) -> dict[str, str]:
        params = {
            "method": method, "app_key": self.app_key, "sign_method": self.sign_method,
            "timestamp": self.clock().astimezone(CHINA_TIME).strftime(TIMESTAMP_FORMAT),
            "format": "json", "v": "2.0", "simplify": "true", **business,
        }
        params["sign"] = top_sign(params, self.secret, self.sign_method)
        return params

    async def call(self, method: str, business: Mapping[str, str], wire: Wire) -> dict[str, Any]:
        """The answer's content (the `…_response` wrapper removed when present).

        TransientError for transport failures and 5xx (a query is safe to repeat),
        PermanentError (party third_party by the rules) for a TOP `error_response`.
        """
        request = self.http.build_request("POST", self.gateway_url, data=self.signed_params(method, business))
        response = await exchange(self.http, request, wire)
        detail: dict[str, object] = {"platform": "alihealth_top", "method": method, "status_code": response.status_code}
        if response.status_code >= 500:
            raise TransientError(f"TOP gateway answered HTTP {response.status_code}", detail=detail)
        try:
            answer = response.json()
        except ValueError as exc:
            raise PermanentError(f"TOP answer is not JSON: {exc}", detail=detail) from exc
        if not isinstance(answer, dict):
            raise PermanentError("TOP answer is not a JSON object", detail=detail)
        error = answer.get("error_response")
        if isinstance(error, dict):
            detail.update(top_code=error.get("code"), sub_code=error.get("sub_code"))
            raise PermanentError(f"TOP error {error.get('code')}: {error.get('sub_msg') or error.get('msg')}",
                                 detail=detail)
        inner = answer.get(response_root(method), answer)
        return inner if isinstance(inner, dict) else {}


@dataclass(frozen=True)
class CodeInfo:
    code: str
    parent_code: str
    status: str
    code_pack_level: str


def _listed(value: Any, wrapper: str) -> list[Any]:
    """TOP lists come plain (simplify) or wrapped in an object named after the item tag."""
    if isinstance(value, dict):
        value = value.get(wrapper, [])
    return value if isinstance(value, list) else [value] if isinstance(value, dict) else []


def relation_codes(content: Mapping[str, Any]) -> list[CodeInfo]:
    """Every CodeInfo in a relation answer, in the order given."""
    result = content.get("result")
    if not isinstance(result, dict):
        raise PermanentError("relation answer has no result", detail={"platform": "alihealth_top"})
    if result.get("response_success") in (False, "false"):
        raise PermanentError(
            f"relation query failed: {result.get('msg_code')} {result.get('msg_info')}",
            detail={"platform": "alihealth_top", "msg_code": result.get("msg_code")},
        )
    codes: list[CodeInfo] = []
    for relation in _listed(result.get("model_list"), "code_relation_dto"):
        if not isinstance(relation, dict):
            continue
        for info in _listed(relation.get("code_relation_list"), "code_info"):
            if isinstance(info, dict) and info.get("code"):
                codes.append(CodeInfo(
                    code=str(info["code"]), parent_code=str(info.get("parent_code") or ""),
                    status=str(info.get("status") or ""), code_pack_level=str(info.get("code_pack_level") or ""),
                ))
    return codes


class CodeRelations:
    """Expands a code into its smallest-package codes; answers are cached (bounded LRU)."""

    def __init__(self, client: TopClient, *, ref_ent_id: str, cache_size: int = 10_000) -> None:
        self.client = client
        self.ref_ent_id = ref_ent_id
        self.cache_size = cache_size
        self._cache: OrderedDict[str, list[str]] = OrderedDict()

    async def smallest_codes(self, code: str, wire: Wire | None = None) -> list[str]:
        """The small-package codes under `code` (itself when it is a small package).

        InputError (party his) naming `code` when 码上放心 does not know it.
        """
        cached = self._cache.get(code)
        if cached is not None:
            self._cache.move_to_end(code)
            return list(cached)
        content = await self.client.call(
            RELATION_METHOD, {"ref_ent_id": self.ref_ent_id, "des_ref_ent_id": self.ref_ent_id, "code": code},
            wire or Wire(),
        )
        infos = relation_codes(content)
        if not infos or any(info.code == code and info.status == CODE_UNKNOWN for info in infos):
            raise InputError(f"码上放心 does not know the code {code}", field="code")
        parents = {info.parent_code for info in infos}
        leaves = [info.code for info in infos if info.code not in parents]
        self._cache[code] = leaves
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        log.debug("trace code expanded", small_codes=len(leaves))
        return list(leaves)
