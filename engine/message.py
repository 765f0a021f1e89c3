"""Words of the message model shared by store, pipeline, adapters and plugins."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Mapping


class Status(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    SENT = "sent"
    REPLIED = "replied"
    FAILED = "failed"
    DEAD = "dead"
    FILTERED = "filtered"
    SHORT_CIRCUITED = "short_circuited"


UNFINISHED = frozenset({Status.RECEIVED, Status.QUEUED})


class Party(StrEnum):
    HIS = "his"
    DEVICE = "device"
    ENGINE = "engine"
    NETWORK = "network"
    THIRD_PARTY = "third_party"


class StageName(StrEnum):
    RAW = "raw"
    TRANSFORMED = "transformed"
    SENT = "sent"
    RESPONSE_RAW = "response_raw"
    RESPONSE_TRANSFORMED = "response_transformed"
    ERROR = "error"


class StorageMode(StrEnum):
    FULL = "full"
    PRODUCTION = "production"  # no transformed copies
    METADATA = "metadata"  # no content at all, only ids, keys, status, attempts


class Delivery(StrEnum):
    SYNC = "sync"
    ASYNC = "async"


@dataclass(frozen=True)
class Payload:
    """Bytes plus what they are. Every stage of a message is a Payload."""

    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Any, **kw: Any) -> "Payload":
        return cls(json.dumps(value, ensure_ascii=False).encode(), "application/json", **kw)

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self, encoding: str = "utf-8") -> str:
        return self.body.decode(encoding, errors="replace")


@dataclass(frozen=True)
class Verdict:
    """Who is at fault for a failure, which rule decided, and what to do about it."""

    party: Party
    rule_id: str
    reason: str
    remedy: str = ""
