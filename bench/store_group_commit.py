"""Durable writes per second through the message store: the group-commit writer against
one commit per write (the same writer with groups of one), in the same run.

    python bench/store_group_commit.py [--messages 3000] [--concurrency 64] [--url URL]

Each write is a create_message with a 1 KiB raw stage and one delivery, awaited until
committed (SQLite: WAL, synchronous=FULL). Without --url each mode gets a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.ids import new_id
from engine.message import Delivery, Payload, Status
from engine.store import MessageStore, migrate
from engine.store.records import NewDelivery, NewMessage

RAW = Payload(b'{"infno":"3505","input":{"drug_trac_codg":"' + b"8" * 980 + b'"}}')


def synthetic_message() -> NewMessage:
    return NewMessage(
        id=new_id(), channel="drug_trace_sale", source="bench", received_at=datetime.now(UTC),
        raw=RAW, content_type=RAW.content_type,
        deliveries=[NewDelivery("drug_trace", Delivery.ASYNC, Status.QUEUED)],
        status=Status.QUEUED, business_keys={"rx_no": "RX-BENCH"},
    )


async def run(url: str, *, messages: int, concurrency: int, max_group: int) -> dict[str, Any]:
    await migrate(url)
    store = MessageStore(url, max_group=max_group)
    commits = [0]
    sa.event.listen(store.write_engine, "commit",
                    lambda _connection: commits.__setitem__(0, commits[0] + 1))
    remaining = iter(range(messages))

    async def caller() -> None:
        for _ in remaining:
            await store.create_message(synthetic_message())

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await store.close()
    return {"writes_per_s": messages / elapsed, "commits": commits[0],
            "mean_group": messages / max(commits[0], 1), "seconds": elapsed}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--url", help="database URL (default: a fresh SQLite file per mode)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        for label, max_group in (("one commit per write", 1), ("group commit", 500)):
            url = args.url or f"sqlite:///{workdir}/{max_group}.db"
            result = await run(url, messages=args.messages, concurrency=args.concurrency,
                               max_group=max_group)
            print(f"{label:>22}: {result['writes_per_s']:8.0f} durable writes/s  "
                  f"({result['commits']} commits, {result['mean_group']:.1f} writes/commit, "
                  f"{result['seconds']:.2f} s)")


if __name__ == "__main__":
    asyncio.run(main())
