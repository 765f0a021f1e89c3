"""zeep exceptions become engine errors in the one translation place, and none is left out."""

from __future__ import annotations

import inspect

import pytest
from zeep import exceptions as zx

from engine.errors import AdapterError, PermanentError, TransientError
from engine.transports import translate_errors, translate_zeep, zeep_decisions, zeep_not_translated


def test_every_exception_class_zeep_defines_has_a_decision() -> None:
    defined = {obj for obj in vars(zx).values() if inspect.isclass(obj) and issubclass(obj, Exception)}
    undecided = sorted(cls.__name__ for cls in defined - set(zeep_decisions()) - zeep_not_translated())
    assert undecided == [], f"decide how to translate: {undecided}"
    assert zx.Fault in defined and zx.TransportError in defined


def test_a_fault_inside_translate_errors_carries_code_and_string() -> None:
    original = zx.Fault("accession unknown", code="{http://schemas.xmlsoap.org/soap/envelope/}Client")
    with pytest.raises(PermanentError) as raised, translate_errors():
        raise original
    assert raised.value.__cause__ is original
    assert raised.value.detail == {
        "condition": "soap_fault",
        "exception": "Fault",
        "request_left": True,
        "faultcode": "Client",
        "faultstring": "accession unknown",
    }


def test_prefixed_fault_codes_lose_their_prefix() -> None:
    assert translate_zeep(zx.Fault("x", code="soap:Server")).detail["faultcode"] == "Server"


@pytest.mark.parametrize(
    ("exc", "error", "condition", "request_left"),
    [
        (zx.TransportError("bad", status_code=503), TransientError, "http_status", True),
        (zx.TransportError("bad", status_code=404), PermanentError, "http_status", True),
        (zx.TransportError("invalid XML", status_code=200, content=b"<x"), PermanentError, "malformed_xml", True),
        (zx.XMLSyntaxError("not xml"), PermanentError, "malformed_xml", True),
        (zx.DTDForbidden("n", "s", "p"), PermanentError, "malformed_xml", True),
        (zx.ValidationError("Missing element text"), PermanentError, "soap_request", False),
        (zx.LookupError("no such type"), PermanentError, "wsdl", False),
        (zx.WsdlSyntaxError("broken"), PermanentError, "wsdl", False),
        (zx.UnexpectedElementError("extra"), PermanentError, "unexpected_element", True),
    ],
)
def test_decisions(exc: Exception, error: type[AdapterError], condition: str, request_left: bool) -> None:
    translated = translate_zeep(exc)
    assert type(translated) is error
    assert translated.detail["condition"] == condition
    assert translated.detail["request_left"] is request_left


def test_the_caller_knows_better_whether_the_request_left() -> None:
    assert translate_zeep(zx.LookupError("reply element"), request_left=True).detail["request_left"] is True


def test_an_unknown_fault_on_an_error_status_is_decided_by_the_status() -> None:
    translated = translate_zeep(zx.Fault("Unknown fault occured", detail="<html/>"), status_code=502)
    assert isinstance(translated, TransientError) and translated.detail["http_status"] == 502


def test_a_class_zeep_adds_later_is_still_translated() -> None:
    class FutureZeepError(zx.Error):
        pass

    with pytest.raises(PermanentError) as raised, translate_errors():
        raise FutureZeepError("new")
    assert raised.value.detail["condition"] == "soap"
    assert raised.value.detail["exception"] == "FutureZeepError"


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), translate_errors():
        raise KeyError("not a transport error")
