"""SoapCaller against a real SOAP service on a socket: exact envelopes on the wire, WSDL from
a URL or a file (cached), and every failure an engine error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.adapters.base import Wire
from engine.catalogue import Catalogue
from engine.errors import OutcomeUnknownError, PermanentError, TransientError
from engine.formats.diff import diff_payloads
from engine.formats.registry import FormatRegistry
from engine.plugin_manager import create_plugin_manager
from engine.transports.http import HttpClients
from engine.transports.soap import SoapCaller, WsdlCache
from tests.engine.transports.soap_service import WSDL, EchoServer, EchoService


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    async with EchoServer(EchoService()) as server:
        yield server


def caller(echo: EchoServer, services: HttpClients, *, cache: WsdlCache | None = None, **options: object) -> SoapCaller:
    return SoapCaller(f"{echo.url}/echo?wsdl", services, cache=cache or WsdlCache(), **{"timeout": 5.0, **options})  # type: ignore[arg-type]


async def test_a_call_returns_plain_values_and_records_the_exact_envelopes(
    echo: EchoServer, services: HttpClients
) -> None:
    wire = Wire()
    result = await caller(echo, services).call("Echo", wire, text="检查申请 CT", count=2)

    assert result == {"text": "检查申请 CT", "length": 7}
    record = wire.current
    assert record.sent is not None and record.response is not None
    assert record.sent.body == echo.service.received[-1]  # byte for byte what the service got
    assert record.sent.headers["soapaction"] == '"urn:hisbridge:test:echo#Echo"'
    assert record.sent.content_type.startswith("text/xml")
    assert b"<ns0:text>" in record.sent.body or b"text>" in record.sent.body
    assert record.status_code == 200 and b"<length>7</length>" in record.response.body
    assert record.detail["soap_operation"] == "Echo"


async def test_sent_and_answer_diff_by_xml_element_path(echo: EchoServer, services: HttpClients) -> None:
    wire = Wire()
    await caller(echo, services).call("Echo", wire, text="abc")
    assert wire.current.sent is not None and wire.current.response is not None
    pm = create_plugin_manager()
    registry = FormatRegistry(Catalogue.build(pm).formats)

    entries = diff_payloads(wire.current.sent, wire.current.response, registry)

    assert {entry.path: entry.kind for entry in entries} == {
        "/Envelope/Body/EchoRequest/text": "removed",
        "/Envelope/Body/EchoResponse/text": "added",
        "/Envelope/Body/EchoResponse/length": "added",
    }


async def test_wsdl_from_a_url_is_fetched_once_per_cache(echo: EchoServer, services: HttpClients) -> None:
    cache = WsdlCache()
    first, second = caller(echo, services, cache=cache), caller(echo, services, cache=cache)
    await first.call("Echo", Wire(), text="a")
    await second.call("Echo", Wire(), text="b")
    assert echo.service.wsdl_requests == 1 and cache.loads == 1


async def test_wsdl_from_a_file_relative_to_the_conf_dir(
    echo: EchoServer, services: HttpClients, tmp_path: Path
) -> None:
    (tmp_path / "wsdl").mkdir()
    (tmp_path / "wsdl" / "echo.wsdl").write_text(WSDL.replace("{address}", f"{echo.url}/echo"))
    soap = SoapCaller("wsdl/echo.wsdl", services, timeout=5.0, base_dir=tmp_path, cache=WsdlCache())
    assert await soap.call("Echo", Wire(), text="file") == {"text": "file", "length": 4}
    assert echo.service.wsdl_requests == 0


async def test_address_overrides_the_wsdl_endpoint(echo: EchoServer, services: HttpClients, tmp_path: Path) -> None:
    (tmp_path / "echo.wsdl").write_text(WSDL.replace("{address}", "http://pacs.invalid:1/echo"))
    soap = SoapCaller(str(tmp_path / "echo.wsdl"), services, timeout=5.0, address=f"{echo.url}/echo", cache=WsdlCache())
    assert (await soap.call("Echo", Wire(), text="x"))["length"] == 1


async def test_a_soap_fault_is_a_rejection_with_its_code_and_string(echo: EchoServer, services: HttpClients) -> None:
    echo.service.mode, echo.service.fault_text = "fault", "检查号 A1 不存在"
    wire = Wire()
    with pytest.raises(PermanentError) as raised:
        await caller(echo, services).call("Echo", wire, text="x")
    detail = raised.value.detail
    assert detail["condition"] == "soap_fault"
    assert (detail["faultcode"], detail["faultstring"]) == ("Server", "检查号 A1 不存在")
    assert detail["request_left"] is True and detail["exception"] == "Fault"
    assert wire.current.status_code == 500 and wire.current.response is not None


async def test_malformed_xml_answer(echo: EchoServer, services: HttpClients) -> None:
    echo.service.mode = "malformed"
    wire = Wire()
    with pytest.raises(PermanentError) as raised:
        await caller(echo, services).call("Echo", wire, text="x")
    assert raised.value.detail["condition"] == "malformed_xml"
    assert raised.value.detail["request_left"] is True
    assert "<oops" in str(raised.value.detail["body_excerpt"])
    assert wire.current.response is not None and b"<oops" in wire.current.response.body


async def test_an_html_error_page_is_decided_by_its_status(echo: EchoServer, services: HttpClients) -> None:
    echo.service.mode = "html500"
    with pytest.raises(TransientError) as raised:
        await caller(echo, services).call("Echo", Wire(), text="x")
    assert raised.value.detail["http_status"] == 500
    assert "Internal Server Error" in str(raised.value.detail["body_excerpt"])


async def test_a_slow_answer_times_out_with_an_unknown_outcome(echo: EchoServer, services: HttpClients) -> None:
    cache = WsdlCache()
    await caller(echo, services, cache=cache).call("Echo", Wire(), text="warm")  # WSDL loaded, long timeout
    echo.service.mode, echo.service.delay = "slow", 0.5
    quick = caller(echo, services, cache=cache, timeout=0.05)
    with pytest.raises(OutcomeUnknownError) as raised:
        await quick.call("Echo", Wire(), text="x")
    assert raised.value.detail["condition"] == "timeout"
    assert len(echo.service.received) == 2  # it arrived: the outcome really is unknown


async def test_arguments_that_do_not_fit_the_wsdl_are_never_sent(echo: EchoServer, services: HttpClients) -> None:
    wire = Wire()
    with pytest.raises(PermanentError) as raised:
        await caller(echo, services).call("Echo", wire, count=1)  # `text` is required
    assert raised.value.detail["condition"] == "soap_request"
    assert raised.value.detail["request_left"] is False
    assert echo.service.received == [] and not wire.request_left


async def test_an_operation_the_wsdl_lacks(echo: EchoServer, services: HttpClients) -> None:
    with pytest.raises(PermanentError) as raised:
        await caller(echo, services).call("Shout", Wire(), text="x")
    assert raised.value.detail["condition"] == "wsdl"
    assert "Echo" in str(raised.value)


async def test_refused_connection_did_not_leave(services: HttpClients, tmp_path: Path, dead_port: int) -> None:
    (tmp_path / "echo.wsdl").write_text(WSDL.replace("{address}", f"http://127.0.0.1:{dead_port}/echo"))
    wire = Wire()
    with pytest.raises(TransientError) as raised:
        await SoapCaller(str(tmp_path / "echo.wsdl"), services, timeout=5.0, cache=WsdlCache()).call(
            "Echo", wire, text="x"
        )
    assert not isinstance(raised.value, OutcomeUnknownError)
    assert raised.value.detail["condition"] == "connect" and not wire.request_left


async def test_an_unreachable_wsdl_is_transient_and_not_cached(services: HttpClients, dead_port: int) -> None:
    cache = WsdlCache()
    soap = SoapCaller(f"http://127.0.0.1:{dead_port}/echo?wsdl", services, timeout=5.0, cache=cache)
    for _ in range(2):
        with pytest.raises(TransientError) as raised:
            await soap.call("Echo", Wire(), text="x")
        assert raised.value.detail["condition"] == "connect"
    assert cache.loads == 2


async def test_a_missing_wsdl_file_is_a_config_problem(services: HttpClients, tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as raised:
        await SoapCaller("absent.wsdl", services, timeout=5.0, base_dir=tmp_path, cache=WsdlCache()).call(
            "Echo", Wire(), text="x"
        )
    assert raised.value.detail["condition"] == "wsdl"


async def test_a_wsdl_that_is_not_xml(services: HttpClients, tmp_path: Path) -> None:
    (tmp_path / "bad.wsdl").write_text("this is not a wsdl")
    with pytest.raises(PermanentError) as raised:
        await SoapCaller(str(tmp_path / "bad.wsdl"), services, timeout=5.0, cache=WsdlCache()).call("Echo", Wire())
    assert raised.value.detail["condition"] in {"malformed_xml", "wsdl"}
