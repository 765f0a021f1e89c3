"""Time-sortable message ids (ULID layout): 48-bit millisecond timestamp + 80 random bits,
written as 26 Crockford base32 characters, so ids sort by creation time as plain strings.

Ids made in the same millisecond by one process still sort in creation order: the random
part of the previous id is incremented instead of drawn afresh.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {char: value for value, char in enumerate(ALPHABET)}
_TIME_BITS = 48
_RANDOM_BITS = 80
_LENGTH = 26
_TIME_CHARS = 10

_lock = threading.Lock()
_last_ms = -1
_last_random = 0


def _encode(value: int) -> str:
    chars = []
    for _ in range(_LENGTH):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id() -> str:
    """A new 26-character id, greater than every id this process made before."""
    global _last_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms = now_ms
            _last_random = int.from_bytes(os.urandom(_RANDOM_BITS // 8), "big")
        else:
            # Same millisecond (or the clock stepped back): keep the time, count up.
            _last_random += 1
            if _last_random >> _RANDOM_BITS:
                _last_ms += 1
                _last_random = 0
        return _encode((_last_ms << _RANDOM_BITS) | _last_random)


def id_time(message_id: str) -> datetime:
    """The UTC moment encoded in an id (millisecond precision)."""
    if len(message_id) != _LENGTH:
        raise ValueError(f"an id has {_LENGTH} characters, got {len(message_id)}")
    ms = 0
    for char in message_id[:_TIME_CHARS].upper():
        try:
            ms = (ms << 5) | _DECODE[char]
        except KeyError:
            raise ValueError(f"not a Crockford base32 character: {char!r}") from None
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
