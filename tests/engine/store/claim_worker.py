"""A separate outbox process for test_store_claims_across_processes: claims in a loop until
nothing is due and prints every delivery id it leased, one per line."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from engine.store import MessageStore


async def claim_all(url: str, worker: str, go: Path) -> None:
    store = await MessageStore.open(url, migrate=False)
    try:
        print("ready", flush=True)
        while not go.exists():
            time.sleep(0.005)
        while claimed := await store.claim_due(worker, limit=7, lease_seconds=300):
            for delivery in claimed:
                print(delivery.delivery_id, flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(claim_all(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
