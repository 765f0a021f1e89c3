"""A generic JSON-over-HTTP destination: POST the transformed message, return the answer.

Useful on its own for simple REST interfaces (a provincial platform, a LIS HTTP endpoint)
and as the model a plugin's HTTP adapter follows: build the request, send it through
`engine.transports.http.exchange` (which records the wire and translates errors), then
classify the status code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import httpx
from pydantic import Field, ValidationInfo, field_validator

from engine.adapters.base import Adapter, AdapterConfig, AdapterServices, Wire
from engine.config.model import SecretRef
from engine.config.secrets import resolve
from engine.message import Delivery, Payload
from engine.transports import status_error
from engine.transports.http import exchange

BODY_EXCERPT_CHARS = 500


class HttpJsonConfig(AdapterConfig):
    url: str = Field(
        description="endpoint the message is sent to",
        examples=["https://platform.example.org/api/v1/report"],
        pattern=r"^https?://",
    )
    method: Literal["POST", "PUT", "PATCH"] = Field("POST", description="HTTP method")
    timeout: float = Field(10.0, gt=0, description="seconds to wait for the answer")
    connect_timeout: float | None = Field(
        None, gt=0, description="seconds to wait for the connection; defaults to `timeout`"
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="extra request headers (no secrets: use bearer_token)"
    )
    bearer_token: SecretRef | None = Field(
        None, description="sent as `Authorization: Bearer <token>`", examples=[{"$env": "PLATFORM_TOKEN"}]
    )
    verify: bool | str = Field(
        True, description="verify the server's TLS certificate (or a CA bundle path)"
    )
    idempotent: bool | None = Field(
        None, description="declare the endpoint safe to call twice, enabling retries; default false"
    )

    @field_validator("bearer_token")
    @classmethod
    def _file_relative_to_base_dir(cls, ref: SecretRef | None, info: ValidationInfo) -> SecretRef | None:
        base_dir = (info.context or {}).get("base_dir")
        if ref is None or ref.file is None or base_dir is None or Path(ref.file).is_absolute():
            return ref
        return SecretRef(file=str(Path(base_dir) / ref.file))


class HttpJsonAdapter(Adapter):
    name = "http_json"
    Config = HttpJsonConfig
    delivery = Delivery.SYNC
    idempotent = False
    description = "JSON over HTTP to any REST endpoint; 5xx is transient, 4xx is a rejection"

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        assert isinstance(config, HttpJsonConfig)
        super().__init__(config, services)
        self.settings = config
        if config.idempotent is not None:
            self.idempotent = config.idempotent  # type: ignore[misc]  # instance overrides class
        self._client = services.http_client(timeout=config.timeout, verify=config.verify)
        # the request is built here once, as the client would build it for every call
        # (its default headers, then ours), and only copied per call
        self._url = httpx.URL(config.url)
        self._headers = httpx.Headers(self._client.headers)
        self._headers.update(config.headers)
        if config.bearer_token is not None:
            self._headers["Authorization"] = f"Bearer {resolve(config.bearer_token)}"
        self._content_type_configured = any(name.lower() == "content-type" for name in config.headers)
        timeout = httpx.Timeout(config.timeout, connect=config.connect_timeout or config.timeout)
        self._extensions = {"timeout": timeout.as_dict()}

    async def send(self, request: Payload, wire: Wire) -> Payload:
        """POST the body as is; 2xx returns the answer, 5xx/408/429 is transient, other
        statuses are a rejection carrying the status and the start of the answer."""
        headers = self._headers.copy()
        if not self._content_type_configured:
            headers["Content-Type"] = request.content_type
        http_request = httpx.Request(
            self.settings.method, self._url, content=request.body, headers=headers,
            extensions=dict(self._extensions),
        )
        response = await exchange(self._client, http_request, wire)
        if not response.is_success:
            raise status_error(response.status_code, excerpt=response.text[:BODY_EXCERPT_CHARS])
        answer = wire.current.response
        assert answer is not None  # exchange recorded it
        return answer

    async def check(self) -> None:
        """Nothing to probe without sending a message: a generic endpoint has no ping."""

    async def aclose(self) -> None:
        """The client is the engine's shared one; nothing of our own to release."""
