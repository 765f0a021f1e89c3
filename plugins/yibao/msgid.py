"""Message ids: `fixmedins_code(12) + yyyyMMddHHmmss(14) + seq(4)`, 30 characters.

Uniqueness across several engine nodes comes from splitting the 4-digit sequence space:
daemon node `k` of `n` owns `[k*9000//n, (k+1)*9000//n)` and never leaves it, so two nodes
(or two processes configured as two nodes) cannot produce the same id in the same second,
whatever their clocks say. Sequences 9000–9999 are kept for one-off tools (`hisbridge yibao
reconcile` runs beside the daemon with the same config), so a CLI run never collides with
the daemon. They are split into ten slots of 100 chosen by process id, and one generator
is shared by all tool calls within a process (`tool_generator`): two tool processes
started one after the other have different pids modulo 10, so they do not collide either.
Within one generator the second is a logical clock: it never goes backwards (a wall clock
stepped back does not reuse ids), and when a
node has used its whole range in one second it borrows the next second instead of
waiting, so `next()` never blocks the event loop. With one node the range is 9,000 ids a
second; with n nodes it is 9,000 // n.

One process is one node: every process of a deployment (each daemon, each worker) needs
its own `node` number. A process restarted within the same second it last issued ids
could reuse them; restarts take longer than that in practice.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

DAEMON_SEQUENCES = 9_000
TOOL_SEQUENCES = range(9_000, 10_000)
TOOL_SLOTS = 10
MSGID_LENGTH = 30


class MsgIdGenerator:
    """Thread-safe and async-safe (no await inside) source of unique `msgid`s."""

    def __init__(
        self,
        fixmedins_code: str,
        *,
        node: int = 0,
        nodes: int = 1,
        tool_slot: int | None = None,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        if len(fixmedins_code) != 12:
            raise ValueError(f"fixmedins_code must have 12 characters, got {len(fixmedins_code)}")
        if not 1 <= nodes <= DAEMON_SEQUENCES:
            raise ValueError(f"nodes must be between 1 and {DAEMON_SEQUENCES}")
        if not 0 <= node < nodes:
            raise ValueError(f"node must be between 0 and {nodes - 1}")
        self.fixmedins_code = fixmedins_code
        if tool_slot is not None:
            width = len(TOOL_SEQUENCES) // TOOL_SLOTS
            self.first = TOOL_SEQUENCES.start + (tool_slot % TOOL_SLOTS) * width
            self.end = self.first + width
        else:
            self.first = node * DAEMON_SEQUENCES // nodes
            self.end = (node + 1) * DAEMON_SEQUENCES // nodes
        self._clock = clock
        self._lock = threading.Lock()
        self._second: datetime | None = None
        self._next_seq = self.first

    def next(self) -> str:
        with self._lock:
            now = self._clock().replace(microsecond=0, tzinfo=None)
            if self._second is None or now > self._second:
                self._second, self._next_seq = now, self.first
            elif self._next_seq >= self.end:
                self._second += timedelta(seconds=1)
                self._next_seq = self.first
            seq = self._next_seq
            self._next_seq += 1
            second = self._second
        return f"{self.fixmedins_code}{second:%Y%m%d%H%M%S}{seq:04d}"


_TOOL_GENERATORS: dict[str, MsgIdGenerator] = {}
_TOOL_LOCK = threading.Lock()


def tool_generator(fixmedins_code: str) -> MsgIdGenerator:
    """The one generator of this (tool) process for an institution, in its pid's tool slot."""
    with _TOOL_LOCK:
        generator = _TOOL_GENERATORS.get(fixmedins_code)
        if generator is None:
            generator = MsgIdGenerator(fixmedins_code, tool_slot=os.getpid())
            _TOOL_GENERATORS[fixmedins_code] = generator
        return generator


def msgid_time(msgid: str) -> datetime:
    """The timestamp part of a msgid."""
    return datetime.strptime(msgid[12:26], "%Y%m%d%H%M%S")
