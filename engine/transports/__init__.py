"""Transports shared by adapters, and the one place their exceptions become engine errors.

`translate_errors()` wraps every transport call. The question each decision answers is
the one the engine must act on: did the request leave? A refused connect never left, so
it is a plain `TransientError` (safe to try again, even for a settlement). A timeout or
reset after sending may have been acted on, so it is an `OutcomeUnknownError`. A request
the engine can never send (bad URL, bad header) is a `PermanentError`.

Every translated error's `detail` holds `condition` (connect, tls, timeout, reset,
protocol, decoding, redirects, config, request, http_status), `exception` (the original
class name) and `request_left`. The decision table names every exception class httpx
exports; a test fails when an httpx upgrade adds one without a decision here. A class
outside the table still becomes an engine error through its nearest listed base.
SOAP (zeep) gets its own table beside this one, caught in the same context manager.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from engine.errors import (
    AdapterError,
    EngineError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
)


@dataclass(frozen=True)
class Decision:
    error: type[AdapterError]
    condition: str
    request_left: bool


_NOT_SENT = Decision(TransientError, "connect", False)
_UNKNOWN = Decision(OutcomeUnknownError, "protocol", True)

HTTPX_DECISIONS: dict[type[Exception], Decision] = {
    # Never reached the peer: nothing left, try again freely.
    httpx.ConnectError: _NOT_SENT,
    httpx.ConnectTimeout: _NOT_SENT,
    httpx.PoolTimeout: _NOT_SENT,
    httpx.ProxyError: Decision(TransientError, "proxy", False),
    # Sent (or partly sent: a write that stalled may still be completed by the kernel),
    # no usable answer: the peer may have acted.
    httpx.ReadTimeout: Decision(OutcomeUnknownError, "timeout", True),
    httpx.WriteTimeout: Decision(OutcomeUnknownError, "timeout", True),
    httpx.TimeoutException: Decision(OutcomeUnknownError, "timeout", True),
    httpx.ReadError: Decision(OutcomeUnknownError, "reset", True),
    httpx.WriteError: Decision(OutcomeUnknownError, "reset", True),
    httpx.CloseError: Decision(OutcomeUnknownError, "reset", True),
    httpx.NetworkError: Decision(OutcomeUnknownError, "reset", True),
    httpx.RemoteProtocolError: Decision(OutcomeUnknownError, "reset", True),
    httpx.ProtocolError: _UNKNOWN,
    # The peer answered, but the answer cannot be read: what it did is unknown to us.
    httpx.DecodingError: Decision(OutcomeUnknownError, "decoding", True),
    # The engine built a request that can never be sent: configuration or adapter fault.
    httpx.LocalProtocolError: Decision(PermanentError, "request", False),
    httpx.UnsupportedProtocol: Decision(PermanentError, "config", False),
    httpx.InvalidURL: Decision(PermanentError, "config", False),
    httpx.TooManyRedirects: Decision(PermanentError, "redirects", True),
    # Generic bases: reached only by classes httpx adds later; assume the worst.
    httpx.TransportError: _UNKNOWN,
    httpx.RequestError: _UNKNOWN,
    httpx.HTTPError: _UNKNOWN,
}
"""Decision per httpx exception class. `HTTPStatusError` is decided by status code."""

NOT_TRANSLATED: frozenset[type[Exception]] = frozenset(
    {
        # Misuse of the httpx API by adapter code (reading a stream twice, conflicting
        # cookies): an engine fault, left as is so it is attributed to the engine.
        httpx.StreamError,
        httpx.StreamConsumed,
        httpx.StreamClosed,
        httpx.ResponseNotRead,
        httpx.RequestNotRead,
        httpx.CookieConflict,
    }
)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Raise every transport exception raised inside as an engine error, `from` it.

    Usable in sync and async code alike (`with translate_errors(): await ...`). Engine
    errors and exceptions the engine does not translate pass through unchanged.
    """
    try:
        yield
    except EngineError:
        raise
    except httpx.HTTPStatusError as exc:
        raise _status_error(exc) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise translate(exc) from exc


def translate(exc: Exception) -> AdapterError:
    """The engine error for one httpx exception (without raising it)."""
    decision = decide(type(exc))
    condition = decision.condition
    if condition == "connect" and _caused_by(exc, ssl.SSLError):
        condition = "tls"
    detail: dict[str, object] = {
        "condition": condition,
        "exception": type(exc).__name__,
        "request_left": decision.request_left,
    }
    host = _host(exc)
    if host:
        detail["host"] = host
    return decision.error(f"{condition}: {describe(exc)}", detail=detail)


def decide(exc_type: type[Exception]) -> Decision:
    for cls in exc_type.__mro__:
        decision = HTTPX_DECISIONS.get(cls)
        if decision is not None:
            return decision
    raise LookupError(f"{exc_type.__name__} is not an httpx error")


def describe(exc: BaseException) -> str:
    text = str(exc) or (str(exc.__cause__) if exc.__cause__ else "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def status_error(status: int, *, excerpt: str = "", exception: str = "") -> AdapterError:
    """The engine error for a non-2xx answer: 5xx, 408 and 429 may pass, others will not."""
    retryable = status >= 500 or status in (408, 429)
    error = TransientError if retryable else PermanentError
    detail: dict[str, object] = {
        "condition": "http_status",
        "exception": exception,
        "request_left": True,
        "http_status": status,
    }
    if excerpt:
        detail["body_excerpt"] = excerpt
    return error(f"http_status: HTTP {status}", detail=detail)


def _status_error(exc: httpx.HTTPStatusError) -> AdapterError:
    return status_error(exc.response.status_code, exception=type(exc).__name__)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _host(exc: Exception) -> str | None:
    try:
        request = exc.request if isinstance(exc, httpx.RequestError) else None
    except RuntimeError:  # httpx raises when the exception carries no request
        return None
    return request.url.host if request is not None else None
