"""Turn an exception raised while handling a message into facts that fault rules match.

`error_kind` is the transport condition an AdapterError carries in `detail["condition"]`
(`connect`, `tls`, `timeout`, `reset`, ...), else the name of the nearest engine error class
(`InputError`, `PermanentError`, `OutcomeUnknownError`, ... — a plugin's subclass of
PermanentError counts as `PermanentError`), else `exception` for anything that is not an
engine error (a bug). Because a condition hides the class, `fields["error_class"]` always
holds that class name too, so a rule can tell a timeout before sending (TransientError)
from one after the request left (OutcomeUnknownError).

`fields` holds the error's `detail`, plus `error_class`, `exception_type` (the Python class
actually raised), `field`/`party` for InputError, `destination`/`state`/`reason`/`since`
for DestinationUnavailable, and `request_left` — the transport's own verdict when its
detail has one, else whether the adapter recorded anything as sent on the wire.
"""

from __future__ import annotations

from typing import Any

from engine import errors
from engine.adapters.base import Wire, WireRecord
from engine.attribution.rules import FailureFacts

_ENGINE_ERROR_CLASSES = frozenset(
    value
    for value in vars(errors).values()
    if isinstance(value, type) and issubclass(value, errors.EngineError)
)


def engine_error_class(exc: BaseException) -> str:
    """Name of the nearest class from engine.errors in the exception's MRO, or `exception`."""
    for cls in type(exc).__mro__:
        if cls in _ENGINE_ERROR_CLASSES:
            return cls.__name__
    return "exception"


def facts_from_error(
    exc: BaseException, *, stage: str, adapter: str, channel: str, wire: Wire | None
) -> FailureFacts:
    error_class = engine_error_class(exc)
    detail: dict[str, Any] = dict(exc.detail) if isinstance(exc, errors.AdapterError) else {}
    fields = {
        **detail,
        **_class_fields(exc),
        "error_class": error_class,
        "exception_type": type(exc).__name__,
    }
    if wire is not None:
        fields.setdefault("request_left", wire.request_left)
    answered = _last_answer(wire)
    condition = detail.get("condition")
    return FailureFacts(
        stage=stage,
        error_kind=str(condition) if condition else error_class,
        message=str(exc) or type(exc).__name__,
        http_status=_http_status(detail, answered),
        ack_code=_ack_code(detail, answered),
        adapter=adapter,
        channel=channel,
        fields=fields,
    )


def _class_fields(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, errors.InputError):
        return {"field": exc.field, "party": exc.party}
    if isinstance(exc, errors.DestinationUnavailable):
        since = exc.since.isoformat() if exc.since else None
        return {
            "destination": exc.destination,
            "state": exc.state,
            "reason": exc.reason,
            "since": since,
        }
    return {}


def _last_answer(wire: Wire | None) -> WireRecord | None:
    """The newest wire record that got an answer (a later step may not have)."""
    if wire is None:
        return None
    answered = [r for r in wire.records if r.status_code is not None or r.ack_code is not None]
    return answered[-1] if answered else None


def _http_status(detail: dict[str, Any], answered: WireRecord | None) -> int | None:
    for key in ("http_status", "status_code"):
        value = detail.get(key)
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                break
    return answered.status_code if answered else None


def _ack_code(detail: dict[str, Any], answered: WireRecord | None) -> str | None:
    value = detail.get("ack_code")
    if value:
        return str(value)
    return answered.ack_code if answered else None
