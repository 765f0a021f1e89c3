"""The engine's exception tree, split by what the engine must do with each error.

    EngineError
    ├── ConfigError          fatal at start-up; carries the config path of every problem
    ├── PluginError          a plugin broke the contract (duplicate adapter name, bad hook)
    ├── StoreError           the message store could not read or write
    ├── InputError           the caller (HIS or a device) sent something unusable; party = his/device
    └── AdapterError         a destination call failed
        ├── TransientError   retry where safe; counts toward the destination's breaker
        │   └── OutcomeUnknownError   the request left but no answer came back (never blindly retried)
        ├── PermanentError   no retry: dead-letter, or reply to the caller with the reason
        └── DestinationUnavailable   the breaker is open or an operator suspended the destination

Third-party exceptions (httpx, zeep, sockets) are translated in exactly one place,
`engine.transports.translate_errors`, which raises these with `from exc`.
"""

from __future__ import annotations

from datetime import datetime


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""


class ConfigError(EngineError):
    """Configuration is invalid; `problems` holds one `path: message` line per error."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class PluginError(EngineError):
    """A plugin broke the hook contract."""


class StoreError(EngineError):
    """The message store failed."""


class InputError(EngineError):
    """The sender's input cannot be processed; names the field or part at fault.

    `party` is `his` for HIS callers and `device` for analysers and modalities.
    """

    def __init__(self, reason: str, *, field: str | None = None, party: str = "his") -> None:
        self.reason = reason
        self.field = field
        self.party = party
        super().__init__(f"{field}: {reason}" if field else reason)


class AdapterError(EngineError):
    """A destination call failed. `detail` holds wire facts (status code, ACK code, error code)."""

    def __init__(self, message: str, *, detail: dict[str, object] | None = None) -> None:
        self.detail = dict(detail or {})
        super().__init__(message)


class TransientError(AdapterError):
    """A failure that may pass: connect refused, timeout, 5xx. Counts toward the breaker."""


class OutcomeUnknownError(TransientError):
    """The request was sent but no answer arrived; the remote side may have acted on it."""


class PermanentError(AdapterError):
    """A failure that will not pass by retrying: the remote side rejected the request."""


class DestinationUnavailable(AdapterError):
    """The destination is not being called: its breaker is open or it is suspended."""

    def __init__(
        self, destination: str, *, state: str, since: datetime | None, reason: str
    ) -> None:
        self.destination = destination
        self.state = state
        self.since = since
        self.reason = reason
        super().__init__(f"destination {destination} is {state}: {reason}")
