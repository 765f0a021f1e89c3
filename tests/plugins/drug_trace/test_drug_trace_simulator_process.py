"""`python -m plugins.drug_trace.simulator` serves the 码上放心 gateway in its own process:
packages from a file and posted at runtime expand; a wrong secret is refused."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import httpx
import pytest

from engine.adapters.base import Wire
from engine.errors import PermanentError
from plugins.drug_trace.top import CodeRelations, TopClient
from tests.plugins.drug_trace.trace_data import AMOXICILLIN_CASE_PREFIX, AMOXICILLIN_PREFIX, code

pytestmark = pytest.mark.slow
START_SECONDS = 30.0  # an upper bound for start-up on a loaded machine, not a speed assertion
SECRET_ENV = "DRUG_TRACE_TEST_SIM_SECRET"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_simulator_runs_as_a_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "process-secret")
    case, posted_case = code(AMOXICILLIN_CASE_PREFIX, 1), code(AMOXICILLIN_CASE_PREFIX, 2)
    boxes = [code(AMOXICILLIN_PREFIX, n) for n in (1, 2)]
    packages = tmp_path / "packages.json"
    packages.write_text(json.dumps({case: boxes}))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plugins.drug_trace.simulator", "--port", str(port), "--app-key", "23000009",
        "--secret-env", SECRET_ENV, "--packages", str(packages),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + START_SECONDS
            while True:
                try:
                    added = await http.post(f"{base}/_sim/packages", json={posted_case: [code(AMOXICILLIN_PREFIX, 3)]})
                    break
                except httpx.TransportError:
                    assert loop.time() < deadline, "the simulator did not start"
                    await asyncio.sleep(0.1)
            assert added.json() == {"packages": 1}

            def relations(secret: str) -> CodeRelations:
                client = TopClient(http=http, gateway_url=f"{base}/router/rest", app_key="23000009", secret=secret)
                return CodeRelations(client, ref_ent_id="REFENT0001")

            from_file = await relations("process-secret").smallest_codes(case, Wire())
            posted = await relations("process-secret").smallest_codes(posted_case, Wire())
            with pytest.raises(PermanentError):
                await relations("wrong").smallest_codes(case, Wire())
    finally:
        process.terminate()
        await process.wait()
    assert (from_file, posted) == (boxes, [code(AMOXICILLIN_PREFIX, 3)])
