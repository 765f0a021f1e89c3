"""`pacs_rest`: HIS exam orders to a PACS REST/JSON interface.

new → `POST {base_url}/exam-orders`, change → `PUT {base_url}/exam-orders/{accession}`,
cancel → `POST {base_url}/exam-orders/{accession}/cancel`; the body is the order as
HIS sent it, validated and normalised. 2xx accepts; a 404 on change/cancel is an unknown
accession number (`condition: unknown_accession`); other answers are decided by status as
for any HTTP destination, with the PACS's `error.code`/`error.message` when it sends them.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import Field

from engine.adapters.base import AdapterConfig, AdapterServices, Wire
from engine.errors import AdapterError, PermanentError
from engine.message import Payload
from engine.transports import status_error
from engine.transports.http import exchange, payload_of
from plugins.pacs.model import ExamOrder, OrderAction
from plugins.pacs.order_adapter import JsonOrderAdapter
from plugins.pacs.soap_adapter import SYSTEM

BODY_EXCERPT_CHARS = 500


class PacsRestConfig(AdapterConfig):
    base_url: str = Field(
        description="the PACS interface base URL; paths /exam-orders... are appended",
        examples=["http://10.1.2.3:8080/api"],
        pattern=r"^https?://",
    )
    timeout: float = Field(10.0, gt=0, description="seconds to wait for the answer")
    verify: bool | str = Field(True, description="verify the server's TLS certificate (or a CA bundle path)")
    idempotent: bool = Field(False, description="the PACS ignores an accession number it already has")


class PacsRestAdapter(JsonOrderAdapter):
    name: ClassVar[str] = "pacs_rest"
    Config: ClassVar[type[AdapterConfig]] = PacsRestConfig
    description: ClassVar[str] = "exam orders (new/change/cancel) to a PACS REST/JSON interface"

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        assert isinstance(config, PacsRestConfig)
        super().__init__(config, services)
        self.settings = config
        self.idempotent = config.idempotent  # type: ignore[misc]  # instance overrides class
        self._base = config.base_url.rstrip("/")
        self._client = services.http_client(timeout=config.timeout, verify=config.verify)

    async def send(self, request: Payload, wire: Wire) -> Payload:
        order = ExamOrder.model_validate(request.json())
        method, url = self._route(order)
        http_request = self._client.build_request(
            method, url, content=request.body, headers={"Content-Type": "application/json"}
        )
        response = await exchange(self._client, http_request, wire)
        if not response.is_success:
            raise _refusal(response, order)
        return payload_of(response)

    def transform_response(self, response: Payload) -> Payload:
        return response

    async def aclose(self) -> None:
        """The HTTP client is the engine's shared one; nothing of our own to release."""

    def _route(self, order: ExamOrder) -> tuple[str, str]:
        collection = f"{self._base}/exam-orders"
        item = f"{collection}/{quote(order.accession_number, safe='')}"
        if order.action is OrderAction.NEW:
            return "POST", collection
        if order.action is OrderAction.CHANGE:
            return "PUT", item
        return "POST", f"{item}/cancel"


def _refusal(response: httpx.Response, order: ExamOrder) -> AdapterError:
    error = _error_body(response)
    excerpt = response.text[:BODY_EXCERPT_CHARS]
    if response.status_code == 404 and order.action is not OrderAction.NEW:
        return PermanentError(
            f"unknown_accession: the PACS has no order {order.accession_number}",
            detail={
                "condition": "unknown_accession",
                "system": SYSTEM,
                "http_status": 404,
                "accession_number": order.accession_number,
                "request_left": True,
                **error,
            },
        )
    refused = status_error(response.status_code, excerpt=excerpt)
    refused.detail.update({"system": SYSTEM, **error})
    return refused


def _error_body(response: httpx.Response) -> dict[str, Any]:
    """`{"error": {"code", "message"}}` as the PACS sends it, when it does."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return {}
    return {f"pacs_{key}": str(error[key]) for key in ("code", "message") if key in error}


__all__ = ["PacsRestAdapter", "PacsRestConfig"]
