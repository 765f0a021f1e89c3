"""The source contract: a listener kind that brings messages into channels."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, ClassVar

from pydantic import BaseModel, ConfigDict

from engine.errors import InputError
from engine.message import Payload


class SourceConfig(BaseModel):
    """Base of every source kind's config schema."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Receipt:
    """What a source learns once a message is durably stored: it may acknowledge now.

    `status` is `failed` (with `error` = {party, rule_id, reason, field}) when the engine
    refused the message at intake, e.g. a field the channel requires is missing: the
    source should then answer its sender with a rejection (an HL7 AE/AR, an ASTM NAK)."""

    message_id: str
    channel: str
    status: str = "queued"
    error: dict[str, Any] | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Outcome:
    """The end of a message's sync path: the reply for the caller, or why there is none."""

    message_id: str
    status: str
    reply: Payload | None
    error: dict[str, Any] | None


Accept = Callable[[Payload], Awaitable[Receipt]]
"""Store a message durably on the source's channel and start its delivery. Returns only
after the raw bytes are committed, so the source may acknowledge the sender then."""

Call = Callable[[Payload], Awaitable[Outcome]]
"""Run a message through its channel and wait for the sync destination's reply."""


Refuse = Callable[[Payload, InputError], Awaitable[Receipt]]
"""Store bytes the source refused before they made a message (a frame that never completed,
proprietary text on an ASTM line) as a failed message of the channel, attributed through the
fault rules (an `InputError` with `party="device"` blames the device). Returns after the
commit, with the message id to quote in the negative answer and the log."""


@dataclass(frozen=True)
class SourceBinding:
    """The engine's side of one source instance."""

    channel: str
    accept: Accept
    call: Call
    refuse: Refuse


class Source(ABC):
    """A listener of one kind (MLLP, ASTM, a table poller) bound to one channel.

    `kind` is the key under `source.kind` in channel configs; `Config` its schema.
    `start()` opens the listener and returns once it is ready; `stop()` stops accepting,
    finishes in-flight messages and returns; both are called once.
    """

    kind: ClassVar[str]
    Config: ClassVar[type[SourceConfig]] = SourceConfig
    description: ClassVar[str] = ""

    def __init__(self, config: SourceConfig, binding: SourceBinding) -> None:
        self.config = config
        self.binding = binding

    @abstractmethod
    async def start(self) -> None:
        """Open the listener."""

    @abstractmethod
    async def stop(self) -> None:
        """Close the listener after in-flight messages are stored."""
