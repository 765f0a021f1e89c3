"""The PACS services' OpenAPI description, checked against the live daemon that serves it.

schemathesis generates requests from the document the daemon publishes (valid ones and,
separately, ones that break the schema) and runs its default checks on every answer: no
server error, a status the document lists, a body that matches the schema listed for that
status, schema-breaking input refused. One check is left out: `positive_data_acceptance`,
because the services have rules across fields that JSON Schema cannot state (a workload
period's `to` not before its `from`, at most 366 days), so a schema-valid request may
rightly get 422. Examples per operation are few, so the run stays short; hypothesis picks
new ones every run. Runs with many examples found the strictness the models now have
(a JSON number or "0" is no moment, a blank text no name, a day is YYYY-MM-DD)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.openapi import from_dict

from engine.daemon import Daemon
from engine.demo.upstream import Upstream
from plugins.pacs.services.openapi import OPERATIONS
from plugins.pacs.services.paths import API_PREFIX, OPENAPI
from plugins.pacs.services.routes import pacs_service_routes
from plugins.pacs.simulator import PacsServer
from tests.e2e.harness import HIS_TOKEN, OPERATOR_TOKEN, his, running_daemon, write_daemon_conf
from tests.plugins.pacs.test_pacs_services import services_channels

EXAMPLES_PER_OPERATION = int(os.environ.get("HISBRIDGE_SCHEMA_EXAMPLES", "10"))
"""Per operation and mode; set HISBRIDGE_SCHEMA_EXAMPLES=200 for a deeper run by hand."""


@pytest.fixture
async def daemon(tmp_path: Path, pacs: PacsServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Daemon]:
    monkeypatch.setenv("E2E_HIS_TOKEN", HIS_TOKEN)
    monkeypatch.setenv("E2E_OPERATOR_TOKEN", OPERATOR_TOKEN)
    async with Upstream() as his_system:
        conf = write_daemon_conf(tmp_path, services_channels(pacs, his_system.url))
        async with running_daemon(conf) as running:
            yield running


async def test_the_document_describes_exactly_the_routes_served(daemon: Daemon) -> None:
    served = {
        (method.lower(), route.path)  # type: ignore[attr-defined]
        for route in pacs_service_routes(daemon.engine)
        for method in route.methods or ()  # type: ignore[attr-defined]
        if method != "HEAD" and route.path != OPENAPI  # type: ignore[attr-defined]
    }
    assert served == {(operation.method, operation.path) for operation in OPERATIONS}


async def test_the_daemon_keeps_to_its_openapi_description(daemon: Daemon, client: httpx.AsyncClient) -> None:
    published = await client.get(f"{daemon.url}{API_PREFIX}{OPENAPI}", headers=his())
    assert published.status_code == 200
    document = published.json()
    assert document["openapi"].startswith("3.1")

    failures = await asyncio.to_thread(exercise, document, daemon.url)

    assert failures == []


def exercise(document: dict[str, Any], base_url: str) -> list[str]:
    """Every operation with positive and negative examples; the failures, described."""
    schema = from_dict(document)
    failures: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @settings(
                    max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def check(case: Any) -> None:
                    case.call_and_validate(
                        base_url=base_url, session=session, headers=his(), excluded_checks=[positive_data_acceptance]
                    )

                try:
                    check()
                except Exception as exc:  # noqa: BLE001 - collect every operation's failure, report them together
                    failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures
