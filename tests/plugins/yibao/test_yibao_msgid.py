"""msgid: 30 characters, unique per second, per process and across nodes, thread and task safe."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from plugins.yibao.msgid import MsgIdGenerator, msgid_time

CODE = "H44030400123"
NOON = datetime(2026, 11, 1, 12, 0, 0)


def fixed(*moments: datetime):
    remaining = list(moments)

    def clock() -> datetime:
        return remaining.pop(0) if len(remaining) > 1 else remaining[0]

    return clock


def test_format_is_code_timestamp_and_four_digit_sequence() -> None:
    generator = MsgIdGenerator(CODE, clock=lambda: NOON)
    first, second = generator.next(), generator.next()
    assert first == "H44030400123202611011200000000"
    assert second == "H44030400123202611011200000001"
    assert len(first) == 30 and msgid_time(first) == NOON


def test_sequence_restarts_each_second() -> None:
    generator = MsgIdGenerator(CODE, clock=fixed(NOON, NOON, NOON.replace(second=1)))
    assert [generator.next()[-4:] for _ in range(3)] == ["0000", "0001", "0000"]


def test_nodes_own_disjoint_sequence_ranges() -> None:
    nodes = [MsgIdGenerator(CODE, node=k, nodes=3, clock=lambda: NOON) for k in range(3)]
    ids = [node.next() for node in nodes for _ in range(3333)]
    assert len(set(ids)) == len(ids)
    assert [node.first for node in nodes] == [0, 3333, 6666]
    assert nodes[-1].end == 10000


def test_exhausted_range_borrows_the_next_second_instead_of_repeating() -> None:
    generator = MsgIdGenerator(CODE, node=1, nodes=5000, clock=lambda: NOON)  # two ids a second
    ids = [generator.next() for _ in range(5)]
    assert len(set(ids)) == 5
    assert [msgid_time(i).second for i in ids] == [0, 0, 1, 1, 2]
    assert all(i.endswith(("0002", "0003")) for i in ids)


def test_a_clock_stepping_back_does_not_reuse_ids() -> None:
    generator = MsgIdGenerator(CODE, clock=fixed(NOON.replace(second=5), NOON, NOON))
    ids = [generator.next() for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(msgid_time(i) == NOON.replace(second=5) for i in ids)


def test_threads_never_share_an_id() -> None:
    generator = MsgIdGenerator(CODE, clock=lambda: NOON)
    with ThreadPoolExecutor(max_workers=8) as pool:
        batches = list(pool.map(lambda _: [generator.next() for _ in range(2500)], range(8)))
    ids = [i for batch in batches for i in batch]
    assert len(ids) == 20000 and len(set(ids)) == 20000


async def test_concurrent_tasks_never_share_an_id() -> None:
    generator = MsgIdGenerator(CODE)

    async def take() -> list[str]:
        out = []
        for _ in range(200):
            out.append(generator.next())
            await asyncio.sleep(0)
        return out

    ids = [i for batch in await asyncio.gather(*(take() for _ in range(20))) for i in batch]
    assert len(set(ids)) == len(ids) == 4000


@pytest.mark.parametrize(("code", "node", "nodes"), [("H4403", 0, 1), (CODE, 2, 2), (CODE, 0, 0)])
def test_bad_settings_are_refused(code: str, node: int, nodes: int) -> None:
    with pytest.raises(ValueError):
        MsgIdGenerator(code, node=node, nodes=nodes)
