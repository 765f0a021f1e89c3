"""A separate outbox process for test_store_claims_across_processes: claims in a loop until
nothing is due and prints every delivery id it leased, one per line.

Both workers start claiming when the test creates `go`. After its first claim each worker
waits until every worker has claimed once, so both provably take part; from then on they
race freely.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engine.store import MessageStore

WORKERS = 2
WAIT_LIMIT_SECONDS = 30


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.002)


async def claim_all(url: str, worker: str, rendezvous: Path) -> None:
    store = await MessageStore.open(url, migrate=False)
    try:
        print("ready", flush=True)
        wait_for((rendezvous / "go").exists)
        first = True
        while claimed := await store.claim_due(worker, limit=7, lease_seconds=300):
            for delivery in claimed:
                print(delivery.delivery_id, flush=True)
            if first:
                first = False
                (rendezvous / f"claimed-{worker}").touch()
                wait_for(lambda: len(list(rendezvous.glob("claimed-*"))) == WORKERS)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(claim_all(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
