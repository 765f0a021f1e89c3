"""What the API tests share: tokens, the engine config, a throwaway plugin, the client.

Channels:
    settle  sync   http_json → the local upstream (engine.demo.upstream), 2 failures open it
    echo    sync   memory adapter
    trace   async  memory adapter, delivered by the outbox
    keyed   sync   a throwaway plugin's adapter: business keys, field validation
The throwaway plugin also contributes a route, `/api/v1/test-plugin/whoami`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from engine import hookimpl
from engine.adapters.base import Adapter, Wire
from engine.config.model import EngineConfig
from engine.demo.upstream import Upstream
from engine.errors import InputError
from engine.message import Payload
from engine.runtime import Engine

HIS_TOKEN = "his-token-for-tests"
OPERATOR_TOKEN = "operator-token-for-tests"
TOKENS = [("cashier", "his", HIS_TOKEN), ("alice", "operator", OPERATOR_TOKEN)]
MAX_BODY_BYTES = 2048
SETTLE_TIMEOUT_SECONDS = 0.3
OUTBOX_POLLS = 250


class KeyedAdapter(Adapter):
    """Indexes `setl_id` and `psn_name`; rejects a negative `amount` naming the field;
    fails with a bug of its own (not an AdapterError) when asked to `explode`."""

    name = "test_keyed"
    business_keys = ("setl_id", "psn_name")

    def transform(self, request: Payload) -> Payload:
        if request.json().get("amount", 0) < 0:
            raise InputError("amount must not be negative", field="amount")
        return request

    def extract_keys(self, request: Payload) -> dict[str, str]:
        data = request.json()
        return {key: str(data[key]) for key in self.business_keys if key in data}

    async def send(self, request: Payload, wire: Wire) -> Payload:
        if request.json().get("explode"):
            raise ZeroDivisionError("division by zero in the test adapter")
        wire.sent(request)
        reply = Payload.from_json({"accepted": True})
        wire.received(reply, status_code=200)
        return reply


async def whoami(request: Request) -> Response:
    return JSONResponse({"caller": request.state.caller.name})


class ThrowawayPlugin:
    @hookimpl
    def hisbridge_register_adapters(self) -> list[type[Adapter]]:
        return [KeyedAdapter]

    @hookimpl
    def hisbridge_register_routes(self, engine: Engine) -> list[BaseRoute]:
        return [Route("/test-plugin/whoami", whoami)]


class QuietServer(uvicorn.Server):
    """uvicorn without its signal handling: pytest owns the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def engine_config(tmp_path: Path, upstream_url: str) -> EngineConfig:
    return EngineConfig.model_validate({
        "store": {"url": f"sqlite:///{tmp_path / 'hisbridge.db'}"},
        "api": {"max_body_bytes": MAX_BODY_BYTES},
        "outbox": {"poll_interval": 0.05},
        "channels": {
            "settle": {
                "name": "settle",
                "destinations": [{
                    "name": "centre",
                    "adapter": "http_json",
                    "breaker": {"fail_max": 2, "reset_timeout": 60},
                    "retry": {"attempts": 1},
                    "config": {"url": f"{upstream_url}/settle", "timeout": SETTLE_TIMEOUT_SECONDS},
                }],
            },
            "echo": {
                "name": "echo",
                "destinations": [{"name": "echo_box", "adapter": "memory", "delivery": "sync",
                                  "config": {"peer": "api_echo"}}],
            },
            "keyed": {
                "name": "keyed",
                "destinations": [{"name": "keyed_box", "adapter": "test_keyed"}],
            },
            "trace": {
                "name": "trace",
                "destinations": [{"name": "trace_box", "adapter": "memory", "delivery": "async",
                                  "config": {"peer": "api_trace"}}],
            },
        },
    })


@dataclass
class Api:
    engine: Engine
    upstream: Upstream
    url: str
    client: httpx.AsyncClient
    his_token = HIS_TOKEN
    operator_token = OPERATOR_TOKEN
    max_body_bytes = MAX_BODY_BYTES

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def post(self, channel: str, body: bytes | Any, *, token: str = HIS_TOKEN, **kw: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else None
        payload = None if isinstance(body, bytes) else body
        headers = {**self.auth(token), **kw.pop("headers", {})}
        return await self.client.post(f"/api/v1/channels/{channel}", content=content, json=payload,
                                      headers=headers, **kw)

    async def get(self, path: str, *, token: str | None = OPERATOR_TOKEN, **kw: Any) -> httpx.Response:
        headers = self.auth(token) if token else {}
        return await self.client.get(path, headers=headers, **kw)

    async def message(self, message_id: str, *, token: str = OPERATOR_TOKEN) -> dict[str, Any]:
        """The status view of a message; a read sees every write the engine made before it."""
        response = await self.get(f"/api/v1/messages/{message_id}", token=token)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def delivered(self, message_id: str, *, token: str = OPERATOR_TOKEN) -> dict[str, Any]:
        """The status view once the outbox has finished with a queued message."""
        for _ in range(OUTBOX_POLLS):
            view = await self.message(message_id, token=token)
            if view["status"] not in ("received", "queued"):
                return view
            await asyncio.sleep(0.02)
        raise AssertionError(f"message {message_id} still {view['status']} after {OUTBOX_POLLS} polls")

    async def op_post(self, path: str, *, token: str = OPERATOR_TOKEN, **kw: Any) -> httpx.Response:
        return await self.client.post(path, headers=self.auth(token), **kw)


@contextlib.asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free port of 127.0.0.1; yields its URL."""
    server = QuietServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None,
                                        access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("API server did not start")
            await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
