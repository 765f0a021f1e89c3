"""The worklist inside a real daemon: orders HIS posts are served to a modality's C-FIND, and
a restarted daemon serves them again from the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import yaml

from engine.daemon import Daemon
from plugins.pacs.simulator import PacsServer
from plugins.pacs.worklist_adapter import PacsWorklistAdapter
from tests.e2e.harness import HIS_TOKEN, OPERATOR_TOKEN, his, running_daemon, write_conf
from tests.plugins.pacs.conftest import exam_order
from tests.plugins.pacs.test_pacs_worklist import find, query


@pytest.fixture
def conf(tmp_path: Path, pacs: PacsServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("E2E_HIS_TOKEN", HIS_TOKEN)
    monkeypatch.setenv("E2E_OPERATOR_TOKEN", OPERATOR_TOKEN)
    conf = write_conf(tmp_path, "http://127.0.0.1:9")
    outbox = {"initial_backoff": 0.05, "max_backoff": 0.2}
    channel = {"destinations": [
        {"name": "pacs_api", "adapter": "pacs_rest", "delivery": "async", "outbox": outbox,
         "config": {"base_url": pacs.rest_url, "timeout": 2}},
        {"name": "worklist", "adapter": "pacs_worklist", "delivery": "async", "outbox": outbox,
         "config": {"host": "127.0.0.1", "port": 0, "default_station_ae": "ANY_AE"}},
    ]}
    (conf / "channels" / "exam_orders.yaml").write_text(yaml.safe_dump(channel))
    return conf


async def serving_worklist(daemon: Daemon) -> PacsWorklistAdapter:
    adapter = next(d.adapter for d in daemon.engine.channels["exam_orders"].destinations if d.name == "worklist")
    assert isinstance(adapter, PacsWorklistAdapter)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not adapter.serving:
        assert loop.time() < deadline, "the worklist never started"
        await asyncio.sleep(0.02)
    return adapter


async def accessions(adapter: PacsWorklistAdapter, **keys: str) -> list[str]:
    found = await asyncio.to_thread(find, adapter.scp.port, query(**keys))
    return sorted(item.AccessionNumber for item in found)


async def test_routed_orders_are_served_and_survive_a_restart(conf: Path) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        async with running_daemon(conf) as daemon:
            worklist = await serving_worklist(daemon)
            url = f"{daemon.url}/api/v1/channels/exam_orders"
            for body in (exam_order("ACC9201"), exam_order("ACC9202", modality="MR"), exam_order("ACC9203")):
                assert (await client.post(url, json=body, headers=his())).status_code == 202
            cancel = {"action": "cancel", "accession_number": "ACC9203"}
            assert (await client.post(url, json=cancel, headers=his())).status_code == 202
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while len(worklist.worklist) != 2:
                assert loop.time() < deadline, f"worklist has {len(worklist.worklist)} items"
                await asyncio.sleep(0.05)
            assert await accessions(worklist, Modality="CT") == ["ACC9201"]

        async with running_daemon(conf) as daemon:
            worklist = await serving_worklist(daemon)
            assert await accessions(worklist) == ["ACC9201", "ACC9202"]
