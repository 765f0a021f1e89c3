"""Fixtures for the pacs plugin: the simulated PACS on a real socket and adapters pointed at it.

Patients are synthetic (`测试` names, `P-TEST-` ids)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from engine.adapters.base import Adapter
from engine.transports.http import HttpClients
from plugins.pacs.rest_adapter import PacsRestAdapter, PacsRestConfig
from plugins.pacs.simulator import PacsServer, PacsSimulator
from plugins.pacs.soap_adapter import PacsSoapAdapter, PacsSoapConfig


def exam_order(accession: str = "ACC1001", action: str = "new", **overrides: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "action": action,
        "accession_number": accession,
        "requested_procedure_id": f"RP{accession[-4:]}",
        "scheduled_step_id": f"SPS{accession[-4:]}",
        "placer_order_number": f"SQD{accession[-4:]}",
        "patient": {"id": "P-TEST-0001", "name": "测试患者甲", "sex": "F", "birth_date": "1980-02-29"},
        "visit_number": "MZ20261122001",
        "procedure": {"code": "CT0101", "name": "头颅CT平扫", "body_part": "头颅"},
        "modality": "CT",
        "scheduled_at": "2026-11-23T09:30:00",
        "station_ae": "CT_ROOM1",
        "requesting_physician": {"id": "D017", "name": "测试医生"},
        "reason": "头痛待查",
    }
    order.update(overrides)
    return order


@pytest.fixture
async def pacs() -> AsyncIterator[PacsServer]:
    async with PacsServer(PacsSimulator()) as server:
        yield server


@pytest.fixture
async def make_soap_adapter(pacs: PacsServer, services: HttpClients) -> AsyncIterator[Callable[..., PacsSoapAdapter]]:
    made: list[Adapter] = []

    def make(**overrides: Any) -> PacsSoapAdapter:
        config = PacsSoapConfig.model_validate({"wsdl": pacs.wsdl_url, "timeout": 5.0, **overrides})
        adapter = PacsSoapAdapter(config, services)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()


@pytest.fixture
async def rest_adapter(pacs: PacsServer, services: HttpClients) -> AsyncIterator[PacsRestAdapter]:
    adapter = PacsRestAdapter(PacsRestConfig.model_validate({"base_url": pacs.rest_url, "timeout": 5.0}), services)
    yield adapter
    await adapter.aclose()
