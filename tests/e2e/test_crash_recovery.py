"""A daemon killed with SIGKILL mid-burst loses no accepted message (a real subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest

from engine.demo.upstream import Upstream
from tests.e2e.daemon_process import DaemonProcess, free_port
from tests.e2e.harness import his, write_conf
from tests.support.postgres import postgres_schema

pytestmark = pytest.mark.slow

POSTGRES_URL = os.environ.get("HISBRIDGE_TEST_DATABASE_URL")


async def send_burst(
    url: str, count: int, *, concurrency: int, prefix: str, acknowledged: list[str] | None = None
) -> list[str]:
    """Post async uploads; return the upload numbers the daemon acknowledged (202), also
    appended to `acknowledged` as they come so a test can watch the burst."""
    acknowledged = [] if acknowledged is None else acknowledged
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def sender(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            number = f"{prefix}{queue.get_nowait():05d}"
            try:
                response = await client.post(f"{url}/api/v1/channels/upload", json={"upload_no": number},
                                             headers=his())
            except httpx.TransportError:
                return  # the daemon died under us: this message was never acknowledged
            if response.status_code == 202:
                acknowledged.append(number)

    async with httpx.AsyncClient(timeout=5) as client:
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))
    return acknowledged


def delivered(upstream: Upstream) -> list[str]:
    return [json.loads(body)["upload_no"] for body in upstream.accepted_bodies()]


async def wait_for_all(upstream: Upstream, expected: set[str], seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not expected <= set(delivered(upstream)) and loop.time() < deadline:
        await asyncio.sleep(0.1)


async def test_sigkill_mid_burst_loses_no_accepted_message(tmp_path: Path) -> None:
    async with Upstream() as upstream:
        upstream.set_mode("slow", delay=0.2)  # deliveries lag behind acceptance
        conf = write_conf(tmp_path, upstream.url, api_port=free_port())
        daemon = DaemonProcess(conf, conf_port(conf))
        await daemon.start()
        progress: list[str] = []
        burst = asyncio.create_task(send_burst(daemon.url, 3000, concurrency=8, prefix="K", acknowledged=progress))
        while len(upstream.received) < 5 or len(progress) < len(delivered(upstream)) + 20:
            assert not burst.done(), "the burst ended before the daemon was killed"
            await asyncio.sleep(0.01)
        daemon.kill()
        acknowledged = await burst
        assert acknowledged, "the daemon acknowledged nothing before it was killed"
        before_restart = set(delivered(upstream))

        await daemon.start()
        try:
            await wait_for_all(upstream, set(acknowledged), 60)
        finally:
            assert daemon.terminate() == 0

        missing = set(acknowledged) - set(delivered(upstream))
        assert not missing, f"{len(missing)} acknowledged messages never delivered"
        assert len(before_restart) < len(acknowledged), "the kill came too late to test recovery"


@pytest.mark.postgres
async def test_two_daemons_on_postgresql_deliver_each_message_exactly_once(tmp_path: Path) -> None:
    if not POSTGRES_URL:
        pytest.skip("HISBRIDGE_TEST_DATABASE_URL is not set")
    async with Upstream() as upstream:
        await upstream.stop()  # everything queues first, then two workers race to drain it
        with postgres_schema(POSTGRES_URL) as store_url:
            first_conf = write_conf(tmp_path / "a", upstream.url, store_url=store_url, api_port=free_port())
            second_conf = write_conf(tmp_path / "b", upstream.url, store_url=store_url, api_port=free_port())
            first = DaemonProcess(first_conf, conf_port(first_conf))
            second = DaemonProcess(second_conf, conf_port(second_conf))
            await first.start()
            await second.start()
            try:
                halves = await asyncio.gather(
                    send_burst(first.url, 150, concurrency=4, prefix="A"),
                    send_burst(second.url, 150, concurrency=4, prefix="B"),
                )
                acknowledged = set(halves[0]) | set(halves[1])
                assert len(acknowledged) == 300
                await upstream.start()
                await wait_for_all(upstream, acknowledged, 60)
                await asyncio.sleep(1.0)  # a duplicate would arrive now
            finally:
                assert first.terminate() == 0
                assert second.terminate() == 0
        received = delivered(upstream)
        assert sorted(received) == sorted(acknowledged), "every message exactly once"


def conf_port(conf: Path) -> int:
    import yaml

    return int(yaml.safe_load((conf / "hisbridge.yaml").read_text())["api"]["port"])
