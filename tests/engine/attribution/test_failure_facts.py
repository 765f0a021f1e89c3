from datetime import UTC, datetime

from engine.adapters.base import Wire
from engine.attribution.facts import facts_from_error
from engine.errors import (
    DestinationUnavailable,
    InputError,
    OutcomeUnknownError,
    PermanentError,
    TransientError,
)
from engine.message import Payload


class VendorRejected(PermanentError):
    """A plugin's own subclass."""


def facts(exc: BaseException, wire: Wire | None = None, stage: str = "send"):  # type: ignore[no-untyped-def]
    return facts_from_error(exc, stage=stage, adapter="yibao", channel="settle", wire=wire)


def test_condition_is_the_error_kind_and_the_class_is_kept() -> None:
    result = facts(OutcomeUnknownError("read timed out", detail={"condition": "timeout"}))
    assert result.error_kind == "timeout"
    assert result.fields["error_class"] == "OutcomeUnknownError"
    assert (result.stage, result.adapter, result.channel) == ("send", "yibao", "settle")


def test_subclasses_count_as_their_engine_class() -> None:
    result = facts(VendorRejected("no", detail={"infcode": "-1"}))
    assert result.error_kind == "PermanentError"
    assert result.fields["exception_type"] == "VendorRejected"
    assert result.fields["infcode"] == "-1"


def test_foreign_exceptions_are_exception_and_never_have_an_empty_message() -> None:
    result = facts(RuntimeError())
    assert (result.error_kind, result.message) == ("exception", "RuntimeError")


def test_status_and_ack_come_from_detail_first_then_the_last_answer_on_the_wire() -> None:
    wire = Wire()
    wire.sent(Payload(b"{}"))
    wire.received(Payload(b"{}"), status_code=503)
    wire.step(kind="reversal")
    assert facts(TransientError("x"), wire).http_status == 503
    assert facts(TransientError("x", detail={"http_status": "502"}), wire).http_status == 502
    assert facts(TransientError("x", detail={"status_code": 500})).http_status == 500
    assert facts(TransientError("x")).http_status is None
    assert facts(TransientError("x"), wire).fields["request_left"] is True

    hl7 = Wire()
    hl7.received(Payload(b"MSA|AE", "x-application/hl7-v2+er7"), ack_code="AE")
    assert facts(PermanentError("x"), hl7).ack_code == "AE"
    assert facts(PermanentError("x", detail={"ack_code": "AR"}), hl7).ack_code == "AR"


def test_input_error_and_unavailable_carry_their_attributes_as_fields() -> None:
    result = facts(InputError("missing", field="psn_no", party="device"), stage="validate")
    assert result.fields["field"] == "psn_no" and result.fields["party"] == "device"
    since = datetime(2026, 11, 1, 8, tzinfo=UTC)
    unavailable = facts(
        DestinationUnavailable("yibao", state="open", since=since, reason="5 failures")
    )
    assert unavailable.fields["state"] == "open"
    assert unavailable.fields["since"] == "2026-11-01T08:00:00+00:00"
    assert unavailable.error_kind == "DestinationUnavailable"
