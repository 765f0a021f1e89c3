"""Operators at the command line beside a running daemon: suspend, resume, breakers,
channels and replay act on the same store the daemon uses."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from engine import runtime
from engine.cli import main
from engine.demo.upstream import Upstream
from tests.e2e.harness import his, running_daemon


async def cli(conf: Path, *args: str, input: str | None = None) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, ["--conf", str(conf), *args], input=input)


async def wait_for_state(daemon, name: str, state: str) -> None:
    for _ in range(200):
        if {b.name: b.state for b in daemon.engine.breakers.states()}[name] == state:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name} never became {state}")


@pytest.fixture(autouse=True)
def quick_suspension_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "SUSPENSIONS_REFRESH_SECONDS", 0.05)


async def test_cli_suspension_reaches_the_running_daemon_and_lifts(
    conf: Path, upstream: Upstream, client: httpx.AsyncClient
) -> None:
    async with running_daemon(conf) as daemon:
        suspended = await cli(conf, "suspend", "centre", "--reason", "centre maintenance", "--by", "ops-li")
        assert suspended.exit_code == 0, suspended.output
        await wait_for_state(daemon, "centre", "suspended")

        refused = await client.post(f"{daemon.url}/api/v1/channels/settle", json={"n": 1}, headers=his())
        assert refused.status_code == 503
        listing = await cli(conf, "breakers")
        assert "centre" in listing.output and "suspended" in listing.output and "ops-li" in listing.output

        resumed = await cli(conf, "resume", "centre")
        assert resumed.exit_code == 0, resumed.output
        await wait_for_state(daemon, "centre", "closed")
        answered = await client.post(f"{daemon.url}/api/v1/channels/settle", json={"n": 2}, headers=his())
        assert answered.status_code == 200
        assert upstream.count == 1


async def test_suspend_names_the_known_breakers_when_misspelled(conf: Path, upstream: Upstream) -> None:
    async with running_daemon(conf):
        result = await cli(conf, "suspend", "centr", "--reason", "x")
    assert result.exit_code != 0
    assert "centre" in result.output and "platform" in result.output


async def test_channels_lists_the_service_with_subscribers_and_volume(
    conf: Path, upstream: Upstream, client: httpx.AsyncClient
) -> None:
    async with running_daemon(conf) as daemon:
        for n in range(3):
            await client.post(f"{daemon.url}/api/v1/channels/settle", json={"n": n}, headers=his())
    result = await cli(conf, "channels")
    assert result.exit_code == 0, result.output
    assert "settle  [http]  received 3, failed 0" in result.output
    assert "-> centre (http_json, sync)" in result.output
    assert "-> platform (http_json, async)" in result.output


async def test_replay_sends_again_with_lineage(
    conf: Path, upstream: Upstream, client: httpx.AsyncClient
) -> None:
    async with running_daemon(conf) as daemon:
        await upstream.stop()
        failed = await client.post(f"{daemon.url}/api/v1/channels/settle", json={"settlement_id": "S9"},
                                   headers=his())
        original = failed.json()["error"]["message_id"]
        await upstream.start()

    replayed = await cli(conf, "replay", original)
    assert replayed.exit_code == 0, replayed.output
    new_id = replayed.output.split("->")[1].split()[0]
    assert "replied" in replayed.output
    assert upstream.count == 1

    async with running_daemon(conf) as daemon:
        view = await daemon.engine.store.get_message(new_id)
    assert view is not None and view.parent_id == original and view.status == "replied"


async def test_bulk_replay_asks_first(conf: Path, upstream: Upstream, client: httpx.AsyncClient) -> None:
    async with running_daemon(conf) as daemon:
        await upstream.stop()
        for n in range(2):
            await client.post(f"{daemon.url}/api/v1/channels/settle", json={"n": n}, headers=his())
        await upstream.start()

    declined = await cli(conf, "replay", "--channel", "settle", "--status", "failed", input="n\n")
    assert "replay 2 message(s)?" in declined.output and declined.exit_code != 0
    assert upstream.count == 0
