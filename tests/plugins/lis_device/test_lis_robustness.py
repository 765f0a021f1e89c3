"""Damaged device input never escapes as anything but the documented device errors."""

import random

import pytest

from engine.mllp.ack import Outcome, acknowledge
from engine.mllp.framing import MllpDecoder, MllpFrameTooLarge
from engine.mllp.header import Hl7HeaderError
from plugins.lis_device.astm.e1381 import E1381Link
from plugins.lis_device.astm.frames import scan_transcript
from plugins.lis_device.astm.queries import read_orders, read_queries
from plugins.lis_device.astm.records import AstmFormatError, AstmMessage
from plugins.lis_device.astm.results import extract_results
from plugins.lis_device.formats import AstmFormat, Hl7Format
from plugins.lis_device.hl7.observations import extract_observations
from plugins.lis_device.hl7.reader import Hl7Message
from tests.plugins.lis_device.samples import FIXTURES, shared_sample_files

SPECIAL = b"\x02\x03\x04\x05\x06\x15\x17\x0b\x1c\r\n|^\\&~!@"
SOURCES = (
    [path.read_bytes() for path in sorted(FIXTURES.glob("*/*"))]
    + [path.read_bytes() for path in shared_sample_files("hl7", ".hl7", ".mllp")]
    + [path.read_bytes() for path in shared_sample_files("astm", ".astm")]
)


def mutate(data: bytes, rng: random.Random) -> bytes:
    damaged = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not damaged:
            damaged.append(rng.randrange(256))
        position = rng.randrange(len(damaged))
        choice = rng.random()
        if choice < 0.4:
            damaged[position] = rng.choice([*SPECIAL, rng.randrange(256)])
        elif choice < 0.7:
            del damaged[position : position + rng.randint(1, 20)]
        else:
            damaged[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 5)))
    return bytes(damaged)


def read_everything(data: bytes) -> None:
    try:
        extract_observations(Hl7Message.parse(data))
    except Hl7HeaderError:
        pass
    acknowledge(data, Outcome.ACCEPT)
    try:
        message = AstmMessage.parse(scan_transcript(data).text or data)
        extract_results(message)
        read_queries(message)
        read_orders(message)
    except AstmFormatError:
        pass
    link = E1381Link()
    for start in range(0, len(data), 7):
        link.receive(data[start : start + 7], float(start))
    link.tick(1e9)
    for fmt in (Hl7Format(), AstmFormat()):
        if fmt.sniff(data):
            try:
                list(fmt.flatten(data))
                fmt.render(data)
            except ValueError:
                pass
    decoder = MllpDecoder(300)
    chunk = data
    for _ in range(len(data) + 1):
        try:
            decoder.feed(chunk)
            break
        except MllpFrameTooLarge:
            chunk = b""  # the rest of the read is still buffered


@pytest.mark.parametrize("seed", range(4))
def test_damaged_input_only_raises_documented_errors(seed):
    rng = random.Random(seed)
    for _ in range(250):
        read_everything(mutate(rng.choice(SOURCES), rng))
