"""A real simulated insurance centre on a socket, and drug_trace adapters pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from engine.transports.http import HttpClients
from plugins.drug_trace.adapter import DrugTraceAdapter, DrugTraceConfig
from plugins.yibao.simulator import CentreSimulator, SimulatorServer
from tests.plugins.drug_trace.trace_data import adapter_config


@pytest.fixture
async def centre() -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(CentreSimulator()) as server:
        yield server


@pytest.fixture
async def make_adapter(
    centre: SimulatorServer, services: HttpClients, tmp_path: Path
) -> AsyncIterator[Callable[..., DrugTraceAdapter]]:
    made: list[DrugTraceAdapter] = []

    def make(**overrides: Any) -> DrugTraceAdapter:
        config = DrugTraceConfig.model_validate(adapter_config(centre.url, tmp_path, **overrides))
        adapter = DrugTraceAdapter(config, services)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()
