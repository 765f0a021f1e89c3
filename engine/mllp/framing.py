"""MLLP (Minimal Lower Layer Protocol) framing, without sockets.

A block on the wire is `<VT=0x0B> message <FS=0x1C><CR=0x0D>`. TCP gives no message
boundaries, so the decoder is incremental: `feed()` takes whatever one read returned and
gives back every message completed so far. It survives what real networks and devices do:

- several messages in one read, and one message spread over many reads;
- bytes before the start byte (noise, a half block from a dropped connection): they are
  discarded and kept in `pop_discarded()` so the caller can store them as evidence;
- FS without the CR after it (Dymind DH3x), and, when `accept_missing_start_block` is on,
  a block that starts with `MSH` but has no VT at all (the same device);
- a block larger than `max_message_bytes`: `feed()` raises `MllpFrameTooLarge`, drops the
  block up to its end byte and carries on with the next block.

The asyncio listener and sender in the engine own the sockets and the timeouts; for a peer
that never sends the end bytes they ask `has_partial_message` and `reset()`.
"""

from __future__ import annotations

import structlog

from engine.errors import InputError

log = structlog.get_logger(__name__)

START_BLOCK = 0x0B
END_BLOCK = 0x1C
CARRIAGE_RETURN = 0x0D
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_HEAD_BYTES = 512
_LEADING_WHITESPACE = b"\r\n\t "


def encode(
    message: bytes,
    *,
    start_block: int = START_BLOCK,
    end_block: int = END_BLOCK,
    trailer: int = CARRIAGE_RETURN,
) -> bytes:
    """Wrap one message in an MLLP block."""
    return bytes((start_block,)) + message + bytes((end_block, trailer))


class MllpFrameTooLarge(InputError):
    """A block grew past the configured limit. `head` holds its first bytes (enough for the
    MSH segment, so the caller can still answer with an AR naming MSH-10)."""

    def __init__(self, limit: int, head: bytes) -> None:
        self.limit = limit
        self.head = head
        super().__init__(
            f"MLLP block larger than {limit} bytes; dropped up to its end byte",
            field="MLLP",
            party="device",
        )


class MllpDecoder:
    """Incremental MLLP decoder for one connection.

    After `feed()` raised `MllpFrameTooLarge`, bytes that followed in the same read are kept:
    call `feed(b"")` to get the messages they complete.
    """

    def __init__(
        self,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        *,
        start_block: int = START_BLOCK,
        end_block: int = END_BLOCK,
        trailer: int = CARRIAGE_RETURN,
        accept_missing_start_block: bool = True,
    ) -> None:
        if max_message_bytes <= 0:
            raise ValueError("max_message_bytes must be > 0")
        self.max_message_bytes = max_message_bytes
        self._start = start_block
        self._end = end_block
        self._trailer = trailer
        self._accept_missing_start = accept_missing_start_block
        self._input = bytearray()
        self._in_block = False
        self._searched = 0
        self._skipping_oversized = False
        self._swallow_trailer = False
        self._pending_error: MllpFrameTooLarge | None = None
        self._discarded: list[bytes] = []

    @property
    def has_partial_message(self) -> bool:
        """True while bytes of an unfinished block (or unframed text) are buffered."""
        return self._in_block or bool(self._input.strip(_LEADING_WHITESPACE))

    def reset(self) -> bytes:
        """Forget the unfinished block (after a read timeout) and return its bytes."""
        partial = bytes(self._input)
        self._input.clear()
        self._in_block = False
        self._searched = 0
        self._skipping_oversized = False
        self._swallow_trailer = False
        return partial

    def pop_discarded(self) -> list[bytes]:
        """Bytes dropped since the last call (junk before a start byte, stray end bytes)."""
        discarded, self._discarded = self._discarded, []
        return discarded

    def feed(self, data: bytes) -> list[bytes]:
        """Add one read's bytes; return the messages (without framing bytes) now complete."""
        if data:
            self._input += data
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error
        messages: list[bytes] = []
        while True:
            try:
                message = self._next_message()
            except MllpFrameTooLarge as error:
                if not messages:
                    raise
                self._pending_error = error
                return messages
            if message is None:
                return messages
            messages.append(message)

    def _next_message(self) -> bytes | None:
        if self._swallow_trailer and self._input:
            if self._input[0] == self._trailer:
                del self._input[0]
            self._swallow_trailer = False
        if self._skipping_oversized and not self._skip_oversized_rest():
            return None
        if not self._in_block and not self._enter_block():
            return None
        end = self._input.find(self._end, self._searched)
        if end < 0:
            self._searched = len(self._input)
            if len(self._input) > self.max_message_bytes:
                self._reject_oversized(end=None)
            return None
        if end > self.max_message_bytes:
            self._reject_oversized(end=end)
        message = bytes(self._input[:end])
        del self._input[: end + 1]
        self._in_block = False
        self._searched = 0
        self._swallow_trailer = True
        return message

    def _enter_block(self) -> bool:
        """Find where the next message starts; discard junk before it."""
        start = self._input.find(self._start)
        end = self._input.find(self._end)
        if self._accept_missing_start and end >= 0 and (start < 0 or end < start):
            unframed = bytes(self._input[:end]).lstrip(_LEADING_WHITESPACE)
            if unframed.startswith(b"MSH"):
                self._discard(len(self._input[:end]) - len(unframed))
                self._in_block = True
                self._searched = 0
                return True
        if start < 0:
            if (
                end >= 0
                or not self._accept_missing_start
                or len(self._input) > self.max_message_bytes
            ):
                self._discard(len(self._input))
            return False
        self._discard(start)
        del self._input[:1]
        self._in_block = True
        self._searched = 0
        return True

    def _discard(self, count: int) -> None:
        if count <= 0:
            return
        junk = bytes(self._input[:count])
        del self._input[:count]
        if junk.strip(_LEADING_WHITESPACE):
            self._discarded.append(junk)
            log.warning("mllp_junk_discarded", bytes=len(junk))

    def _reject_oversized(self, *, end: int | None) -> None:
        head = bytes(self._input[:_HEAD_BYTES])
        if end is None:
            self._input.clear()
            self._skipping_oversized = True
        else:
            del self._input[: end + 1]
            self._swallow_trailer = True
        self._in_block = False
        self._searched = 0
        log.warning("mllp_block_too_large", limit=self.max_message_bytes)
        raise MllpFrameTooLarge(self.max_message_bytes, head)

    def _skip_oversized_rest(self) -> bool:
        """Drop the rest of an oversized block; True once its end (or a new start) is seen."""
        end = self._input.find(self._end)
        start = self._input.find(self._start)
        if start >= 0 and (end < 0 or start < end):
            del self._input[:start]
        elif end >= 0:
            del self._input[: end + 1]
            self._swallow_trailer = True
        else:
            self._input.clear()
            return False
        self._skipping_oversized = False
        return True
