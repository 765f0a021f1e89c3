"""Two outbox processes claiming from one database lease every delivery exactly once."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.message import Delivery
from engine.store import MessageStore
from engine.store.records import NewMessage

REPO_ROOT = Path(__file__).parents[3]
WORKER = Path(__file__).with_name("claim_worker.py")


async def start_worker(url: str, name: str, rendezvous: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(WORKER), url, name, str(rendezvous),
        stdout=asyncio.subprocess.PIPE, env=env,
    )
    assert process.stdout is not None
    assert await process.stdout.readline() == b"ready\n"
    return process


@pytest.mark.slow
async def test_every_delivery_is_claimed_exactly_once_by_two_processes(
    store: MessageStore, db_url: str, new_message: Callable[..., NewMessage], tmp_path: Path
) -> None:
    messages = [new_message(destinations={"drug_trace": Delivery.ASYNC}) for _ in range(600)]
    created = await asyncio.gather(*(store.create_message(m) for m in messages))
    expected = sorted(ids["drug_trace"] for ids in created)

    workers = await asyncio.gather(
        *(start_worker(db_url, f"worker-{n}", tmp_path) for n in (1, 2)))
    (tmp_path / "go").touch()
    claimed_by_worker = []
    for process in workers:
        output, _ = await process.communicate()
        assert process.returncode == 0
        claimed_by_worker.append([int(line) for line in output.split()])

    every_claim = [delivery for claims in claimed_by_worker for delivery in claims]
    assert sorted(every_claim) == expected  # none missed, none claimed twice
    assert all(claimed_by_worker)  # the workers wait for each other's first claim
