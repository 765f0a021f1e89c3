"""An in-memory destination: the test double plugin authors and engine tests use.

A `MemoryAdapter` talks to a named `MemoryPeer` living in this process. The peer records
every request that reached it and answers by script: echo by default, a fixed reply, or
the next scripted failures. A scripted failure may be an engine error or a raw transport
exception (`httpx.ReadTimeout(...)`); the latter is translated exactly as a real transport
failure would be, so a test sees the same `OutcomeUnknownError` production would.

    peer = memory_peer("lab")            # the peer a `peer: lab` destination talks to
    peer.fail_next(3)                    # three 503-like transient failures, then answers
    peer.down = True                     # connection refused until set back
    assert peer.delivered == [...]       # requests answered successfully, in order
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import Field

from engine.adapters.base import Adapter, AdapterConfig, AdapterServices, Wire
from engine.errors import AdapterError, TransientError
from engine.message import Delivery, Payload
from engine.transports import translate_errors

log = structlog.get_logger(__name__)


def scripted_failure() -> TransientError:
    return TransientError(
        "http_status: HTTP 503 (scripted by the memory peer)",
        detail={"condition": "http_status", "exception": "", "request_left": True, "http_status": 503},
    )


def refused() -> TransientError:
    return TransientError(
        "connect: memory peer is down",
        detail={"condition": "connect", "exception": "", "request_left": False},
    )


@dataclass
class MemoryPeer:
    """The remote side of a memory destination."""

    name: str
    reply: Payload | None = None
    delay: float = 0.0
    down: bool = False
    requests: list[Payload] = field(default_factory=list)
    delivered: list[Payload] = field(default_factory=list)
    script: deque[Payload | BaseException] = field(default_factory=deque)

    def fail_next(self, count: int = 1, error: BaseException | None = None) -> None:
        """Fail the next `count` calls with `error` (default: a transient 503)."""
        for _ in range(count):
            self.script.append(error if error is not None else scripted_failure())

    def answer_next(self, *answers: Payload) -> None:
        self.script.extend(answers)

    def next_outcome(self) -> Payload | BaseException | None:
        if self.down:
            return refused()
        return self.script.popleft() if self.script else None

    def reset(self) -> None:
        self.requests.clear()
        self.delivered.clear()
        self.script.clear()
        self.reply, self.delay, self.down = None, 0.0, False


_peers: dict[str, MemoryPeer] = {}


def memory_peer(name: str = "default") -> MemoryPeer:
    """The peer of that name (created on first use; shared by every adapter naming it)."""
    return _peers.setdefault(name, MemoryPeer(name))


def reset_memory_peers() -> None:
    """Forget every peer (call between tests)."""
    _peers.clear()


class MemoryConfig(AdapterConfig):
    peer: str = Field("default", description="name of the in-memory peer (`memory_peer(name)` in tests)")
    reply: Any = Field(None, description="JSON answered to every call; by default the request is echoed")
    idempotent: bool | None = Field(None, description="declare the destination safe to call twice")


class MemoryAdapter(Adapter):
    name = "memory"
    Config = MemoryConfig
    delivery = Delivery.SYNC
    idempotent = False
    description = "in-memory test double: records requests, answers by script"

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        assert isinstance(config, MemoryConfig)
        super().__init__(config, services)
        self.peer = memory_peer(config.peer)
        if config.reply is not None:
            self.peer.reply = Payload.from_json(config.reply)
        if config.idempotent is not None:
            self.idempotent = config.idempotent  # type: ignore[misc]  # instance overrides class
        self.closed = False

    async def send(self, request: Payload, wire: Wire) -> Payload:
        """Deliver to the peer; a scripted failure is raised as a transport would raise it."""
        peer = self.peer
        outcome = peer.next_outcome()
        if isinstance(outcome, BaseException):
            try:
                with translate_errors():
                    raise outcome
            except AdapterError as error:
                if error.detail.get("request_left", True):
                    self._arrive(request, wire)
                raise
        self._arrive(request, wire)
        if peer.delay:
            await asyncio.sleep(peer.delay)
        answer = outcome or peer.reply or request
        wire.received(answer, status_code=200)
        peer.delivered.append(request)
        return answer

    def _arrive(self, request: Payload, wire: Wire) -> None:
        wire.sent(request)
        self.peer.requests.append(request)

    async def aclose(self) -> None:
        self.closed = True
