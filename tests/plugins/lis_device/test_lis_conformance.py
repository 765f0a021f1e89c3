"""The engine's adapter conformance suite on lis_http, and what it checks that fits a
database (a refused connect is transient and nothing left) on lis_table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.adapters.base import Adapter, Wire
from engine.errors import OutcomeUnknownError, TransientError
from engine.message import Payload
from engine.testing import AdapterConformance, AdapterFactory
from engine.transports.http import HttpClients
from plugins.lis_device.lis_delivery import LisHttpAdapter, LisHttpConfig
from plugins.lis_device.lis_table import LisTableAdapter, LisTableConfig
from tests.plugins.lis_device.test_lis_normalise import HL7_ORU

CODES = "test_code,lis_code\nGLU,1001\nK,1002\n"


@pytest.fixture
def codes(tmp_path: Path) -> str:
    path = tmp_path / "codes.csv"
    path.write_text(CODES, encoding="utf-8")
    return str(path)


def build(url: str, codes: str, services: HttpClients) -> LisHttpAdapter:
    return LisHttpAdapter(LisHttpConfig.model_validate({"url": url, "codes": codes}), services)


class TestLisHttpConformance(AdapterConformance):
    @pytest.fixture
    def sample_request(self) -> Payload:
        return Payload(HL7_ORU, "application/hl7-v2")

    @pytest.fixture
    def working_adapter(self, upstream: Any, codes: str, http_services: HttpClients) -> Adapter:
        return build(f"{upstream.url}/results", codes, http_services)

    @pytest.fixture
    def dead_adapter(self, dead_port: int, codes: str, http_services: HttpClients) -> Adapter:
        return build(f"http://127.0.0.1:{dead_port}/results", codes, http_services)

    @pytest.fixture
    def adapter_raising(
        self, codes: str, raising_services: Callable[[BaseException], HttpClients]
    ) -> AdapterFactory:
        return lambda exc: build("http://lis.test/results", codes, raising_services(exc))


async def test_an_unreachable_lis_database_is_transient_and_nothing_left(tmp_path: Path, codes: str) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'lis.db'}"  # SQLite cannot open it
    adapter = LisTableAdapter(LisTableConfig.model_validate({"url": url, "codes": codes}), services=None)  # type: ignore[arg-type]
    wire = Wire()
    try:
        with pytest.raises(TransientError) as raised:
            await adapter.send(adapter.transform(Payload(HL7_ORU, "application/hl7-v2")), wire)
    finally:
        await adapter.aclose()
    assert not isinstance(raised.value, OutcomeUnknownError)
    assert raised.value.detail == {"condition": "connect", "request_left": False}
    assert not wire.request_left
