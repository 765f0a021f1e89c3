"""The adapter contract: the piece a plugin contributes for one external system.

An adapter turns a message into a call on a remote system and the remote answer into the
reply HIS gets. The engine owns everything around it: storing each stage, breakers,
retries, the outbox, attribution. An adapter only declares what is safe (`idempotent`) and
how it is delivered (`delivery`), and records the exact wire exchange on the `Wire` it is
handed, so an engineer can later see the bytes that went out and came back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import httpx
from pydantic import BaseModel, ConfigDict

from engine.business_keys import KeysOut
from engine.message import Delivery, Payload


class AdapterConfig(BaseModel):
    """Base of every adapter's config schema. Subclasses add fields with descriptions;
    fields holding secrets are typed `engine.config.Secret` and resolved from `$env`/`$file`."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class WireRecord:
    """One exchange on the wire, as an adapter saw it."""

    sent: Payload | None = None
    response: Payload | None = None
    status_code: int | None = None
    ack_code: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Wire:
    """Collects the wire exchanges of one attempt; the pipeline stores them as stages.

    Adapters call `sent()` just before bytes leave and `received()` as soon as the raw
    answer is in, so a failure between the two is known to have happened after sending.
    Multi-step exchanges (sign-in, then the call; a reversal after a timeout) call
    `step()` to start a new record; every record becomes its own pair of stages.
    """

    def __init__(self) -> None:
        self.records: list[WireRecord] = [WireRecord()]

    @property
    def current(self) -> WireRecord:
        return self.records[-1]

    def step(self, **detail: Any) -> WireRecord:
        if self.current.sent is not None or self.current.detail:
            self.records.append(WireRecord())
        self.current.detail.update(detail)
        return self.current

    def sent(self, payload: Payload) -> None:
        self.current.sent = payload

    def received(
        self, payload: Payload, *, status_code: int | None = None, ack_code: str | None = None
    ) -> None:
        self.current.response = payload
        self.current.status_code = status_code
        self.current.ack_code = ack_code

    @property
    def request_left(self) -> bool:
        return any(record.sent is not None for record in self.records)


class AdapterServices(Protocol):
    """What the engine lends an adapter: shared transports configured from engine settings."""

    def http_client(self, *, timeout: float, base_url: str = "", verify: bool | str = True) -> httpx.AsyncClient:
        """An httpx client on the engine's fastest transport; the adapter must not close it."""
        ...


class Adapter(ABC):
    """One external system as a destination.

    Class attributes are the adapter's declaration, read before any instance exists:
    `name` is the key in channel configs, `Config` the schema of its `config:` block,
    `delivery` whether HIS waits for the answer (sync) or the engine stores and forwards
    (async), `idempotent` whether a failed call may be repeated blindly, and
    `business_keys` the names of keys it indexes (settlement id, barcode, invoice number).
    """

    name: ClassVar[str]
    Config: ClassVar[type[AdapterConfig]] = AdapterConfig
    delivery: ClassVar[Delivery] = Delivery.SYNC
    idempotent: ClassVar[bool] = False
    business_keys: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        self.config = config
        self.services = services

    def transform(self, request: Payload) -> Payload:
        """Map the message from HIS to the remote system's format.

        Raise `engine.errors.InputError` naming the field when HIS sent something the remote
        system would reject; the message is then stored with party `his` and never sent.
        """
        return request

    @abstractmethod
    async def send(self, request: Payload, wire: Wire) -> Payload:
        """Call the remote system with the transformed request and return its raw answer.

        Record the exact bytes on `wire` (`wire.sent` before sending, `wire.received` on
        answer). Raise `TransientError` for failures that may pass, `OutcomeUnknownError`
        when the request left and no answer came, `PermanentError` when the remote side
        rejected the request. Anything else is treated as an engine fault.
        """

    def is_idempotent(self, request: Payload) -> bool:
        """Whether this transformed request may be sent again blindly after a failure.

        Defaults to the `idempotent` declaration; an adapter whose transactions differ (a
        query may be repeated, a settlement never) answers per request.
        """
        return self.idempotent

    def transform_response(self, response: Payload) -> Payload:
        """Map the remote system's raw answer to the reply HIS gets."""
        return response

    def extract_keys(self, request: Payload) -> KeysOut:
        """Business keys of this message (names from `business_keys`) for indexed lookup;
        a name may map to a sequence of values (every trace code of a sale)."""
        return {}

    def extract_reply_keys(self, reply: Payload) -> KeysOut:
        """Business keys only the remote system's answer knows (the `setl_id` a settlement
        gets, the number of an issued invoice), indexed when the reply is recorded."""
        return {}

    async def check(self) -> None:  # noqa: B027 - optional: doing nothing is the default
        """Optional health probe; raise an AdapterError when the remote system is not usable."""

    async def aclose(self) -> None:  # noqa: B027 - optional: most adapters hold nothing
        """Release resources; called once at shutdown, must be safe to call twice."""
