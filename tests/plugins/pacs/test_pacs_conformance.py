"""The engine's adapter conformance suite for pacs_soap and pacs_rest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.message import Payload
from engine.testing import AdapterConformance, AdapterFactory
from engine.transports.http import HttpClients
from plugins.pacs.rest_adapter import PacsRestAdapter, PacsRestConfig
from plugins.pacs.simulator import PacsServer
from plugins.pacs.simulator.wsdl import service_wsdl
from plugins.pacs.soap_adapter import PacsSoapAdapter, PacsSoapConfig
from tests.plugins.pacs.conftest import exam_order


@pytest.fixture
def wsdl_file(tmp_path: Path) -> Path:
    """The service description as a conf file; its address is overridden per adapter."""
    path = tmp_path / "pacs.wsdl"
    path.write_text(service_wsdl("http://pacs.invalid/ExamOrderService"), encoding="utf-8")
    return path


class TestPacsSoapConformance(AdapterConformance):
    @pytest.fixture
    def sample_request(self) -> Payload:
        return Payload.from_json(exam_order("ACC7001"))

    @pytest.fixture
    def working_adapter(self, pacs: PacsServer, http_services: HttpClients) -> PacsSoapAdapter:
        return PacsSoapAdapter(PacsSoapConfig.model_validate({"wsdl": pacs.wsdl_url}), http_services)

    @pytest.fixture
    def dead_adapter(self, wsdl_file: Path, dead_port: int, http_services: HttpClients) -> PacsSoapAdapter:
        config = {"wsdl": str(wsdl_file), "address": f"http://127.0.0.1:{dead_port}/ExamOrderService"}
        return PacsSoapAdapter(PacsSoapConfig.model_validate(config), http_services)

    @pytest.fixture
    def adapter_raising(
        self, wsdl_file: Path, raising_services: Callable[[BaseException], HttpClients]
    ) -> AdapterFactory:
        config = PacsSoapConfig.model_validate({"wsdl": str(wsdl_file), "address": "http://pacs.test/ExamOrderService"})
        return lambda exc: PacsSoapAdapter(config, raising_services(exc))


class TestPacsRestConformance(AdapterConformance):
    @pytest.fixture
    def sample_request(self) -> Payload:
        return Payload.from_json(exam_order("ACC7002"))

    @pytest.fixture
    def working_adapter(self, pacs: PacsServer, http_services: HttpClients) -> PacsRestAdapter:
        return PacsRestAdapter(PacsRestConfig.model_validate({"base_url": pacs.rest_url}), http_services)

    @pytest.fixture
    def dead_adapter(self, dead_port: int, http_services: HttpClients) -> PacsRestAdapter:
        return PacsRestAdapter(
            PacsRestConfig.model_validate({"base_url": f"http://127.0.0.1:{dead_port}/api"}), http_services
        )

    @pytest.fixture
    def adapter_raising(self, raising_services: Callable[[BaseException], HttpClients]) -> AdapterFactory:
        config = PacsRestConfig.model_validate({"base_url": "http://pacs.test/api"})
        return lambda exc: PacsRestAdapter(config, raising_services(exc))
