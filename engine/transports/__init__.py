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
SOAP (zeep) gets its own table beside this one (`zeep_decisions`), caught in the same
context manager; a SOAP fault is a `PermanentError` with condition `soap_fault`, its
`faultcode` and `faultstring`.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

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
    except Exception as exc:
        if not _is_zeep_error(exc):
            raise
        raise translate_zeep(exc) from exc


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


# --- SOAP (zeep) --------------------------------------------------------------------------
# zeep is imported only by code that speaks SOAP (engine.transports.soap); until then no
# zeep exception can exist, so this module never pays for importing it.

SOAP_FAULT = "soap_fault"


@cache
def zeep_decisions() -> dict[type[Exception], Decision]:
    """Decision per zeep exception class; `TransportError` is decided by its status too."""
    from zeep import exceptions as zx

    answered_badly = Decision(PermanentError, "malformed_xml", True)
    wsdl = Decision(PermanentError, "wsdl", False)
    return {
        # The service answered with a SOAP fault: it refused the request.
        zx.Fault: Decision(PermanentError, SOAP_FAULT, True),
        zx.TransportError: Decision(PermanentError, "malformed_xml", True),
        # The answer (or a fetched WSDL) is not XML, or is XML the engine will not read.
        zx.XMLSyntaxError: answered_badly,
        zx.DTDForbidden: answered_badly,
        zx.EntitiesForbidden: answered_badly,
        zx.ExternalReferenceForbidden: answered_badly,
        # The reply does not fit the WSDL's types (strict parsing).
        zx.UnexpectedElementError: Decision(PermanentError, "unexpected_element", True),
        zx.SignatureVerificationFailed: Decision(PermanentError, "signature", True),
        # The WSDL cannot be used: nothing was sent.
        zx.XMLParseError: wsdl,
        zx.WsdlSyntaxError: wsdl,
        zx.NamespaceError: wsdl,
        zx.LookupError: wsdl,
        zx.IncompleteOperation: wsdl,
        # The arguments do not fit the operation's input types: nothing was sent.
        zx.ValidationError: Decision(PermanentError, "soap_request", False),
        zx.IncompleteMessage: Decision(PermanentError, "soap_request", False),
        # Generic base: reached only by classes zeep adds later.
        zx.Error: Decision(PermanentError, "soap", True),
    }


@cache
def zeep_not_translated() -> frozenset[type[Exception]]:
    from zeep import exceptions as zx

    return frozenset({zx.ZeepWarning})  # a warning category, never raised as an error


def translate_zeep(
    exc: Exception, *, request_left: bool | None = None, status_code: int | None = None
) -> AdapterError:
    """The engine error for one zeep exception. `request_left` overrides the class's usual
    answer when the caller knows it (a LookupError can come from building or from reading);
    `status_code` is the HTTP status of the answer zeep was reading, when there was one."""
    from zeep import exceptions as zx

    if isinstance(exc, zx.TransportError) and not _is_success(exc.status_code):
        excerpt = _text_excerpt(exc.content)
        return status_error(exc.status_code, excerpt=excerpt, exception=type(exc).__name__)
    if isinstance(exc, zx.Fault) and exc.code is None and not _is_success(status_code):
        # zeep's "Unknown fault": an error status whose body is XML but no SOAP fault
        # (an HTML error page that happens to be well-formed). The status says more.
        assert status_code is not None
        excerpt = _text_excerpt(exc.detail)
        return status_error(status_code, excerpt=excerpt, exception=type(exc).__name__)
    decision = _decide_zeep(type(exc))
    detail: dict[str, object] = {
        "condition": decision.condition,
        "exception": type(exc).__name__,
        "request_left": decision.request_left if request_left is None else request_left,
    }
    if isinstance(exc, zx.Fault):
        detail["faultcode"] = _fault_code(exc.code)
        detail["faultstring"] = exc.message or ""
        if exc.actor:
            detail["faultactor"] = exc.actor
        return decision.error(f"{SOAP_FAULT}: {exc.message or 'no faultstring'}", detail=detail)
    if isinstance(exc, zx.TransportError) and exc.content:
        detail["body_excerpt"] = _text_excerpt(exc.content)
    return decision.error(f"{decision.condition}: {describe(exc)}", detail=detail)


def _decide_zeep(exc_type: type[Exception]) -> Decision:
    decisions = zeep_decisions()
    for cls in exc_type.__mro__:
        decision = decisions.get(cls)
        if decision is not None:
            return decision
    raise LookupError(f"{exc_type.__name__} is not a zeep error")


def _is_zeep_error(exc: Exception) -> bool:
    exceptions = sys.modules.get("zeep.exceptions")
    return exceptions is not None and isinstance(exc, exceptions.Error)


def _is_success(status: int | None) -> bool:
    return status is None or status == 0 or 200 <= status < 300


def _fault_code(code: object) -> str:
    """`soap:Server` or `{namespace}Server` → `Server`: the prefix is the service's choice."""
    text = str(code or "").rsplit("}", 1)[-1]
    return text.rsplit(":", 1)[-1]


def _text_excerpt(content: object, limit: int = 500) -> str:
    if isinstance(content, bytes):
        return content[:limit].decode("utf-8", errors="replace")
    return str(content or "")[:limit]
