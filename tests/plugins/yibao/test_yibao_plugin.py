"""The plugin registers through its entry point like any third-party plugin would."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest

from engine.catalogue import Catalogue
from engine.plugin_manager import create_plugin_manager
from plugins.yibao import plugin
from plugins.yibao.adapter import YibaoAdapter

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_the_entry_point_names_the_plugin_module() -> None:
    (found,) = [ep for ep in entry_points(group="hisbridge.plugins") if ep.name == "yibao"]
    assert found.load() is plugin


def test_the_catalogue_gets_the_adapter_and_the_rules() -> None:
    catalogue = Catalogue.build(create_plugin_manager())
    assert catalogue.adapters["yibao"] is YibaoAdapter
    own = {rule.id for rule in catalogue.fault_rules if rule.id.startswith("yibao.")}
    assert own == {rule.id for rule in plugin.fault_rules()}
    assert catalogue.contributed_by["adapters"]["yibao"] == "yibao"


def test_the_plugin_can_be_disabled() -> None:
    catalogue = Catalogue.build(create_plugin_manager(disabled=["yibao"]))
    assert "yibao" not in catalogue.adapters


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
async def test_the_simulator_runs_as_a_module() -> None:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plugins.yibao.simulator", "--port", str(port),
        cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), 30)
        assert f"127.0.0.1:{port}" in banner.decode()
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"http://127.0.0.1:{port}/fsi/api/rsfComIfsService/callService",
                                       json={"infno": "1101", "msgid": "short"})
        assert answer.json()["infcode"] == -1 and "报文ID" in answer.json()["err_msg"]
    finally:
        process.terminate()
        await process.communicate()
