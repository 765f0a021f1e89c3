"""Logging for entry points only: JSON lines in the daemon, readable lines in the CLI.

Every other module does `log = structlog.get_logger(__name__)` and binds per-message context
with `structlog.contextvars.bound_contextvars(message_id=..., channel=...)`. Records from
stdlib loggers (httpx, zeep, SQLAlchemy, uvicorn) pass through the same processors, and the
PHI redaction processor runs last before rendering, so no renderer ever sees a full ID
number, mobile number or a configured field's value (names, phones).
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import re
import sys
from functools import lru_cache
from typing import Any, Iterable, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from engine.config.model import LoggingSettings

# Runs of 11+ ASCII digits (an ID number may end in X); the callback decides which runs are
# ID or mobile numbers. One cheap pass instead of lookaround patterns tried at every offset.
_DIGIT_RUN = re.compile(r"[0-9]{11,}[Xx]?")
_MOBILE_SECOND_DIGITS = frozenset("3456789")

_CHATTY_LIBRARIES = (
    "httpx",
    "httpcore",
    "zeep",
    "sqlalchemy",
    "aiosqlite",
    "alembic",
    "asyncio",
    "urllib3",
)
_HANDLER_MARK = "_hisbridge_handler"
_ENGINE_KEYS = frozenset({"timestamp", "level", "logger"})
"""Keys the logging setup itself fills in; they never hold patient data."""


def mask_value(value: str) -> str:
    """Keep the first character, hide the rest: `张三` → `张*`."""
    return value[:1] + "*" * (len(value) - 1) if len(value) > 1 else "*" * len(value)


def _mask_number(match: re.Match[str]) -> str:
    run = match[0]
    if len(run) == 18 and run[:17].isdigit():  # resident ID: keep region and last four
        return f"{run[:6]}********{run[14:]}"
    if len(run) == 13 and run.startswith("86"):  # mobile with the country code
        return run[:2] + _mask_number_text(run[2:])
    return _mask_number_text(run)


def _mask_number_text(run: str) -> str:
    if len(run) == 11 and run[0] == "1" and run[1] in _MOBILE_SECOND_DIGITS:
        return f"{run[:3]}****{run[7:]}"
    return run


@lru_cache(maxsize=32)
def _field_pattern(fields: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(re.escape(field) for field in fields)
    return re.compile(
        rf'\\?"(?:{names})\\?"\s*:\s*\\?"(?P<json>(?:[^"\\]|\\[^"])*)'
        rf"|<(?:{names})>(?P<xml>[^<]*)"
        rf"|\b(?:{names})=(?P<pair>[^\s&,;|\"]+)",
        re.IGNORECASE,
    )


def _mask_field(match: re.Match[str]) -> str:
    group = match.lastgroup
    assert group is not None  # every alternative ends in a named group
    return match.string[match.start() : match.start(group)] + mask_value(match[group])


def redact(text: str, fields: Iterable[str]) -> str:
    """`text` with ID numbers, mobile numbers and the values of `fields` masked.

    Field values are recognised in JSON (`"psn_name":"张三"`, also when escaped inside
    another JSON string), XML (`<psn_name>张三</psn_name>`) and `name=value` text.
    """
    text = _DIGIT_RUN.sub(_mask_number, text)
    lowered = text.lower()
    present = tuple(sorted({f.lower() for f in fields if f.lower() in lowered}))
    if present:
        text = _field_pattern(present).sub(_mask_field, text)
    return text


class PhiRedactor:
    """structlog processor masking PHI in every string of the event dict, nested included;
    values under a configured field name are masked whole."""

    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = frozenset(field.lower() for field in fields)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return {
            key: value if key in _ENGINE_KEYS else self._clean(key, value)
            for key, value in event_dict.items()
        }

    def _clean(self, key: object, value: Any) -> Any:
        if isinstance(key, str) and key.lower() in self.fields and value is not None:
            return mask_value(str(value))
        if isinstance(value, str):
            return redact(value, self.fields)
        if isinstance(value, dict):
            return {k: self._clean(k, v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._clean(None, item) for item in value]
        if isinstance(value, int) and not isinstance(value, bool):
            masked = redact(str(value), ())
            return value if masked == str(value) else masked
        return value


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at emit time (CLI test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


_listener: logging.handlers.QueueListener | None = None


def flush_logs() -> None:
    """Write out every queued log line now (before reading them back, or before exiting)."""
    if _listener is not None:
        _listener.stop()
        _listener.start()


def _stop_listener() -> None:
    global _listener
    if _listener is not None:
        _listener.stop()  # writes out what is still queued
        _listener = None


def configure_logging(settings: LoggingSettings, *, json_lines: bool) -> None:
    """Configure structlog and the stdlib root logger; safe to call again (replaces the
    handler it installed before, leaves other handlers such as pytest's alone).

    JSON lines (the daemon) are written by a background thread (`flush_logs()` writes out
    the queue); console lines (the CLI) are written at once, in order with its output."""
    level = getattr(logging, settings.level.upper())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            PhiRedactor(settings.redact_fields),
            renderer,
        ],
    )
    writer = _CurrentStderrHandler()
    _stop_listener()
    handler: logging.Handler = writer
    if json_lines:
        # rendered (and redacted) in the caller's thread, where its context is; written by
        # a background thread, so a slow or blocked stderr never holds up the event loop
        global _listener
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        _listener = logging.handlers.QueueListener(records, writer)
        _listener.start()
        atexit.register(_stop_listener)
        handler = logging.handlers.QueueHandler(records)
    handler.setFormatter(formatter)
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _CHATTY_LIBRARIES:
        quiet = level if level == logging.DEBUG else max(level, logging.WARNING)
        logging.getLogger(name).setLevel(quiet)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
