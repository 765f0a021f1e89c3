"""Message ids: `fixmedins_code(12) + yyyyMMddHHmmss(14) + seq(4)`, 30 characters.

Uniqueness across several engine nodes comes from splitting the 4-digit sequence space:
node `k` of `n` owns the sequence range `[k*10000//n, (k+1)*10000//n)` and never leaves it,
so two nodes (or two processes configured as two nodes) cannot produce the same id in the
same second, whatever their clocks say. Within one generator the second is a logical
clock: it never goes backwards (a wall clock stepped back does not reuse ids), and when a
node has used its whole range in one second it borrows the next second instead of
waiting, so `next()` never blocks the event loop. With one node the range is 10,000 ids a
second; with n nodes it is 10,000 // n.

One process is one node: every process of a deployment (each daemon, each worker) needs
its own `node` number. A process restarted within the same second it last issued ids
could reuse them; restarts take longer than that in practice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

SEQUENCE_SPACE = 10_000
MSGID_LENGTH = 30


class MsgIdGenerator:
    """Thread-safe and async-safe (no await inside) source of unique `msgid`s."""

    def __init__(
        self,
        fixmedins_code: str,
        *,
        node: int = 0,
        nodes: int = 1,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        if len(fixmedins_code) != 12:
            raise ValueError(f"fixmedins_code must have 12 characters, got {len(fixmedins_code)}")
        if not 1 <= nodes <= SEQUENCE_SPACE:
            raise ValueError(f"nodes must be between 1 and {SEQUENCE_SPACE}")
        if not 0 <= node < nodes:
            raise ValueError(f"node must be between 0 and {nodes - 1}")
        self.fixmedins_code = fixmedins_code
        self.first = node * SEQUENCE_SPACE // nodes
        self.end = (node + 1) * SEQUENCE_SPACE // nodes
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


def msgid_time(msgid: str) -> datetime:
    """The timestamp part of a msgid."""
    return datetime.strptime(msgid[12:26], "%Y%m%d%H%M%S")
