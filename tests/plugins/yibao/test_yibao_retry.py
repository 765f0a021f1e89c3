"""Retry safety is per transaction: the engine repeats a lost query (under a fresh msgid)
and never a settlement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.catalogue import Catalogue
from engine.config.model import EngineConfig
from engine.message import Payload
from engine.plugin_manager import create_plugin_manager
from engine.runtime import Engine
from plugins.yibao.simulator import Fault, SimulatorServer
from tests.plugins.yibao.conftest import adapter_config
from tests.plugins.yibao.test_yibao_engine import PERSON_QUERY
from tests.plugins.yibao.yibao_calls import TIF_TOKEN


@pytest.fixture
async def engine(centre: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Engine]:
    monkeypatch.setenv("YIBAO_TEST_TIF_TOKEN", TIF_TOKEN)
    pm = create_plugin_manager()
    config = EngineConfig.model_validate({
        "store": {"url": f"sqlite:///{tmp_path / 'hisbridge.db'}"},
        "channels": {"yibao": {"name": "yibao", "destinations": [{
            "name": "centre", "adapter": "yibao",
            "retry": {"attempts": 3, "initial_backoff": 0, "max_backoff": 0.01},
            "config": adapter_config(centre.url),
        }]}},
    })
    running = await Engine.start(config, pm=pm, catalogue=Catalogue.build(pm), base_dir=tmp_path,
                                 run_outbox=False, run_sources=False)
    yield running
    await running.stop()


async def test_a_lost_query_is_repeated_under_a_fresh_msgid(engine: Engine, centre: SimulatorServer) -> None:
    centre.simulator.inject(Fault("drop", infno="1101"))

    outcome = await engine.call("yibao", Payload.from_json(PERSON_QUERY), caller="his")

    assert outcome.status == "replied"
    view = await engine.store.get_message(outcome.message_id, with_stages=True)
    assert view is not None and view.deliveries[0].attempts == 2
    sent = [Payload(stage["body"]).json() for stage in view.stages if stage["name"] == "sent"]
    calls = [envelope for envelope in sent if envelope["infno"] == "1101"]
    msgids = {envelope["msgid"] for envelope in calls}
    assert len(calls) == 2 and len(msgids) == 2
