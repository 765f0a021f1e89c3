"""`python -m plugins.e_invoice.simulator` serves the platform in its own process."""

from __future__ import annotations

import asyncio
import socket
import sys

import httpx
import pytest

from plugins.e_invoice.envelope import Credentials, open_answer, seal

pytestmark = pytest.mark.slow
START_SECONDS = 30.0  # an upper bound for start-up on a loaded machine, not a speed assertion


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_simulator_runs_as_a_process_and_verifies_signatures() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plugins.e_invoice.simulator", "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + START_SECONDS
            while True:
                try:
                    await client.get(f"http://127.0.0.1:{port}/_sim/stats")
                    break
                except httpx.TransportError:
                    assert loop.time() < deadline, "the simulator did not start"
                    await asyncio.sleep(0.1)
            url = f"http://127.0.0.1:{port}/medical-web/api/medical/getEBillStatesByBillInfo"
            ours = Credentials("TESTAPPID0001", "testkey123")
            query = {"billBatchCode": "44010124", "billNo": "0000000001"}
            good = open_answer(ours, (await client.post(url, json=seal(ours, query))).content)
            forged = seal(Credentials("TESTAPPID0001", "wrong"), query)
            refused = open_answer(ours, (await client.post(url, json=forged)).content)
    finally:
        process.terminate()
        await process.wait()
    assert (good.result, good.text) == ("E3001", "电子票据不存在")
    assert (refused.result, refused.text) == ("E9001", "签名验证失败")
