"""Logging configuration and PHI redaction, with synthetic people only."""

from __future__ import annotations

import json
import logging
from typing import Iterator

import pytest
import structlog

from engine.config.model import LoggingSettings
from engine.logging import PhiRedactor, configure_logging, flush_logs, redact

FIELDS = ["psn_name", "patient_name", "phone"]
ID_NUMBER = "11010519491231002X"  # synthetic: valid shape, nobody's number
MOBILE = "13912345678"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def flushed(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureResult[str]:
    """The daemon's JSON lines are written by a background thread: write them out first."""
    flush_logs()
    return capsys.readouterr()


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"id {ID_NUMBER}.", "id 110105********002X."),
        ("id 110105194912310021", "110105********0021"),
        (f"call {MOBILE}", "call 139****5678"),
        (f"+86{MOBILE}", "+86139****5678"),
        ('{"psn_name":"张三","age":30}', '{"psn_name":"张*","age":30}'),
        ('{"PSN_NAME": "欧阳娜娜"}', '{"PSN_NAME": "欧***"}'),
        ('{\\"psn_name\\":\\"李四\\"}', '{\\"psn_name\\":\\"李*\\"}'),
        ("<patient_name>王五</patient_name>", "<patient_name>王*</patient_name>"),
        ("phone=010-5555&x=1", "phone=0*******&x=1"),
    ],
    ids=[
        "id-x",
        "id-digit",
        "mobile",
        "mobile-country-code",
        "json-field",
        "json-case",
        "escaped-json",
        "xml-element",
        "key-value",
    ],
)
def test_redact_masks_phi(text: str, expected: str) -> None:
    assert expected in redact(text, FIELDS)


@pytest.mark.parametrize(
    "text",
    [
        "drug trace code 81234567890123456789",  # 20 digits: not an ID number
        "order 1391234567890",  # 13 digits: not a mobile number
        '{"channel":"demo","infno":"2207"}',
        "<name_of_ward>East</name_of_ward>",
    ],
)
def test_redact_leaves_other_data_alone(text: str) -> None:
    assert redact(text, FIELDS) == text


def test_processor_masks_configured_keys_and_nested_values() -> None:
    redactor = PhiRedactor(FIELDS)
    event = {
        "event": f"patient {ID_NUMBER} registered",
        "psn_name": "张三",
        "phone": 13912345678,
        "detail": {"patient_name": "李四", "rows": [f"tel {MOBILE}", 1]},
        "count": 3,
    }

    cleaned = redactor(None, "info", event)

    assert cleaned == {
        "event": "patient 110105********002X registered",
        "psn_name": "张*",
        "phone": "1**********",
        "detail": {"patient_name": "李*", "rows": ["tel 139****5678", 1]},
        "count": 3,
    }


@pytest.mark.usefixtures("restore_logging")
def test_daemon_writes_redacted_json_lines_with_bound_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LoggingSettings(redact_fields=FIELDS), json_lines=True)
    log = structlog.get_logger("engine.test")

    with structlog.contextvars.bound_contextvars(message_id="01HZX", channel="demo"):
        log.info("settled", psn_name="张三", body=f'{{"certno":"{ID_NUMBER}"}}')

    (line,) = json_lines(flushed(capsys).err)
    assert line["event"] == "settled"
    assert (line["message_id"], line["channel"], line["level"], line["logger"]) == (
        "01HZX",
        "demo",
        "info",
        "engine.test",
    )
    assert line["psn_name"] == "张*"
    assert line["body"] == '{"certno":"110105********002X"}'
    assert "timestamp" in line


@pytest.mark.usefixtures("restore_logging")
def test_stdlib_library_logs_go_through_the_same_redaction(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LoggingSettings(level="info", redact_fields=FIELDS), json_lines=True)

    with structlog.contextvars.bound_contextvars(message_id="01HZY"):
        logging.getLogger("uvicorn.error").warning("client sent %s", f"tel={MOBILE}")
        logging.getLogger("httpx").info("HTTP Request: POST /settle")  # below the library floor

    (line,) = json_lines(flushed(capsys).err)
    assert line == {
        "event": "client sent tel=139****5678",
        "message_id": "01HZY",
        "level": "warning",
        "logger": "uvicorn.error",
        "timestamp": line["timestamp"],
    }


@pytest.mark.usefixtures("restore_logging")
def test_exceptions_are_rendered_and_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingSettings(), json_lines=True)
    log = structlog.get_logger("engine.test")

    try:
        raise ValueError(f"bad certno {ID_NUMBER}")
    except ValueError:
        log.exception("mapping failed")

    (line,) = json_lines(flushed(capsys).err)
    assert "ValueError: bad certno 110105********002X" in str(line["exception"])
    assert ID_NUMBER not in str(line)


@pytest.mark.usefixtures("restore_logging")
def test_console_output_for_the_cli_and_reconfiguring_replaces_the_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LoggingSettings(level="warning"), json_lines=True)
    configure_logging(LoggingSettings(level="info", redact_fields=FIELDS), json_lines=False)
    ours = [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler.formatter, structlog.stdlib.ProcessorFormatter)
    ]

    structlog.get_logger("engine.cli").info("checked", psn_name="张三")
    structlog.get_logger("engine.cli").debug("not shown")

    err = flushed(capsys).err
    assert len(ours) == 1
    assert err.count("checked") == 1 and "psn_name=张*" in err
    assert "not shown" not in err
    assert not err.lstrip().startswith("{")
