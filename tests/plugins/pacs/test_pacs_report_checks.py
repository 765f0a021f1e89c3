"""The accession check's settings: which channels make an accession known (`order_channels`),
and turning the check off (`check_accession: false`), on a real engine and MLLP socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.catalogue import Catalogue
from engine.config.loader import base_dir, load_config
from engine.message import Payload
from engine.plugin_manager import create_plugin_manager
from engine.runtime import Engine
from plugins.pacs.report_intake import ReportIntake
from plugins.pacs.report_sources import PacsOruSource
from plugins.pacs.simulator import PacsServer
from tests.plugins.pacs.conftest import exam_order
from tests.plugins.pacs.test_pacs_oru import oru
from tests.plugins.pacs.test_pacs_report_sources import exchange_hl7

StartEngine = Callable[[dict[str, Any]], Awaitable[Engine]]


@pytest.fixture
async def start(tmp_path: Path, pacs: PacsServer) -> AsyncIterator[StartEngine]:
    started: list[Engine] = []

    async def run(report_checks: dict[str, Any]) -> Engine:
        conf = tmp_path / "conf"
        (conf / "channels").mkdir(parents=True)
        settings = {"store": {"url": f"sqlite:///{tmp_path / 'store.db'}"}, "outbox": {"poll_interval": 0.02}}
        (conf / "hisbridge.yaml").write_text(yaml.safe_dump(settings))
        order_destination = {"adapter": "pacs_rest", "delivery": "async", "config": {"base_url": pacs.rest_url}}
        channels = {
            "ward_orders": {"destinations": [{"name": "ward_pacs", **order_destination}]},
            "clinic_orders": {"destinations": [{"name": "clinic_pacs", **order_destination}]},
            "reports": {
                "content_type": "application/hl7-v2",
                "source": {"kind": "pacs_oru", "config": {"port": 0, **report_checks}},
                "processors": [{"name": "pacs_oru_report"}],
                "destinations": [{"name": "his", "adapter": "memory", "delivery": "async"}],
            },
        }
        for name, channel in channels.items():
            (conf / "channels" / f"{name}.yaml").write_text(yaml.safe_dump(channel))
        pm = create_plugin_manager()
        catalogue = Catalogue.build(pm)
        engine = await Engine.start(
            load_config(conf, catalogue=catalogue), pm=pm, catalogue=catalogue, base_dir=base_dir(conf)
        )
        started.append(engine)
        await engine.accept("ward_orders", Payload.from_json(exam_order("ACC7001")), caller="test")
        await engine.accept("clinic_orders", Payload.from_json(exam_order("ACC7002")), caller="test")
        return engine

    yield run
    for engine in started:
        await engine.stop()


async def test_every_pacs_order_channel_counts_by_default(start: StartEngine) -> None:
    engine = await start({})
    intake = next(s for s in engine.sources if isinstance(s, PacsOruSource)).intake
    assert isinstance(intake, ReportIntake) and intake.order_channels() == {"ward_orders", "clinic_orders"}
    answers = await exchange_hl7(engine, oru("ACC7001", control_id="R1"), oru("ACC7002", control_id="R2"))
    assert [msa[1] for msa in answers] == ["AA", "AA"]


async def test_only_the_named_order_channels_count(start: StartEngine) -> None:
    engine = await start({"order_channels": ["ward_orders"]})
    ward, clinic = await exchange_hl7(engine, oru("ACC7001", control_id="R1"), oru("ACC7002", control_id="R2"))
    assert ward[1] == "AA"
    assert clinic[1] == "AE" and "order channels: ward_orders" in clinic[3]


async def test_the_check_can_be_turned_off(start: StartEngine) -> None:
    engine = await start({"check_accession": False})
    [msa] = await exchange_hl7(engine, oru("ACC0404", control_id="R1"))
    assert msa[1] == "AA"
