"""msgid: 30 characters, unique per second, per process and across nodes, thread and task safe."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from plugins.yibao.msgid import MsgIdGenerator, msgid_time, tool_generator

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
    tools = [MsgIdGenerator(CODE, tool_slot=pid, clock=lambda: NOON) for pid in range(4711, 4721)]
    ids = [node.next() for node in nodes for _ in range(3000)] + [t.next() for t in tools for _ in range(100)]
    assert len(set(ids)) == len(ids) == 10000
    assert [node.first for node in nodes] == [0, 3000, 6000]
    assert nodes[-1].end == 9000 and sorted(t.first for t in tools) == list(range(9000, 10000, 100))


def test_tools_in_one_process_share_one_generator() -> None:
    assert tool_generator(CODE) is tool_generator(CODE)
    assert tool_generator(CODE).first >= 9000


def test_exhausted_range_borrows_the_next_second_instead_of_repeating() -> None:
    generator = MsgIdGenerator(CODE, node=1, nodes=4500, clock=lambda: NOON)  # two ids a second
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
    assert len(ids) == 20000 and len(set(ids)) == 20000  # more than a second's range: borrows ahead


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
