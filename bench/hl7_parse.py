"""HL7 v2 parse and ACK cost: our reader against the `hl7` package and hl7apy.

Run: python bench/hl7_parse.py [--seconds 0.5]

The message is a synthetic 14-segment ORU^R01 of about 1.5 KB (MSH PID PV1 OBR + 10 OBX),
the shape issue 3 measured hl7apy on. Each row is timed for about `--seconds` seconds of
repeated calls on one core; the table gives microseconds per call and calls per second.
The `hl7` package is optional (pip install hl7); its rows are skipped when it is absent.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message as HapyMessage
from hl7apy.parser import parse_message

from engine.mllp.ack import AckCode, Outcome, acknowledge, build_ack
from engine.mllp.header import MshHeader
from plugins.lis_device.hl7.observations import extract_observations
from plugins.lis_device.hl7.reader import Hl7Message

try:
    import hl7 as python_hl7
except ImportError:  # optional comparison only
    python_hl7 = None


def sample_oru() -> bytes:
    tests = [
        ("6690-2", "WBC", "7.41", "10*9/L", "3.50-9.50", "N"),
        ("789-8", "RBC", "4.61", "10*12/L", "3.80-5.10", "N"),
        ("718-7", "HGB", "128", "g/L", "115-150", "N"),
        ("4544-3", "HCT", "39.2", "%", "35.0-45.0", "N"),
        ("787-2", "MCV", "85.1", "fL", "82.0-100.0", "N"),
        ("785-6", "MCH", "27.8", "pg", "27.0-34.0", "N"),
        ("786-4", "MCHC", "327", "g/L", "316-354", "N"),
        ("777-3", "PLT", "412", "10*9/L", "125-350", "H"),
        ("770-8", "NEUT%", "61.2", "%", "40.0-75.0", "N"),
        ("736-9", "LYMPH%", "29.5", "%", "20.0-50.0", "N"),
    ]
    segments = [
        (
            "MSH|^~\\&|BC5390^SN-0042|SYNLAB|LIS|HOSP|20240301101500||ORU^R01^ORU_R01|"
            "MSG000123456|P|2.3.1||||||UNICODE UTF-8"
        ),
        (
            "PID|1||SYN-000123^^^HOSP^MR||Synthetic^Patient^A||19800101|F|||"
            "1 Synthetic Road^^Springfield^^000000||0000000000"
        ),
        "PV1|1|O|LAB^^^HOSP||||0000^Synthetic^Doctor|||||||||||V000123",
        (
            "OBR|1|BC240301001|77|01001^Complete Blood Count^99MRC|||20240301100000|"
            "20240301101000|||||||20240301100500|BLD|0000^Synthetic^Doctor"
        ),
    ]
    for number, (code, name, value, units, ref, flag) in enumerate(tests, start=1):
        segments.append(
            f"OBX|{number}|NM|{code}^{name}^LN||{value}|{units}|{ref}|{flag}|||F|||"
            f"20240301101400||OPERATOR01^Synthetic^Operator|BC5390^SN-0042"
        )
    return ("\r".join(segments) + "\r").encode("utf-8")


def plain_split(raw: bytes) -> list[list[str]]:
    return [segment.split("|") for segment in raw.decode("utf-8").split("\r") if segment]


def hl7apy_ack(raw: bytes) -> str:
    original = parse_message(
        raw.decode("utf-8"), validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False
    )
    ack = HapyMessage("ACK", version=original.msh.msh_12.value)
    ack.msh.msh_3 = original.msh.msh_5.value
    ack.msh.msh_4 = original.msh.msh_6.value
    ack.msh.msh_5 = original.msh.msh_3.value
    ack.msh.msh_6 = original.msh.msh_4.value
    ack.msh.msh_9 = "ACK^R01^ACK"
    ack.msh.msh_10 = "ACK1"
    ack.msh.msh_11 = original.msh.msh_11.value
    ack.msa.msa_1 = "AA"
    ack.msa.msa_2 = original.msh.msh_10.value
    return ack.to_er7()


def timed(function: Callable[[], object], seconds: float) -> float:
    """Seconds per call, measured over about `seconds` of calls."""
    function()
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            function()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / calls
        calls = max(calls * 2, int(calls * seconds / max(elapsed, 1e-9)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5)
    seconds = parser.parse_args().seconds
    raw = sample_oru()
    text = raw.decode("utf-8")
    header = MshHeader.parse(text)
    now = datetime(2024, 3, 1, 10, 15)
    rows: list[tuple[str, Callable[[], object]]] = [
        ("plain split (baseline)", lambda: plain_split(raw)),
        ("hisbridge reader: parse bytes", lambda: Hl7Message.parse(raw)),
        (
            "hisbridge reader: parse + OBX results",
            lambda: extract_observations(Hl7Message.parse(raw)),
        ),
        ("hisbridge reader: parse + 3 field gets", lambda: _three_gets(raw)),
    ]
    if python_hl7 is not None:
        rows.append(("hl7 package: hl7.parse", lambda: python_hl7.parse(text)))
    rows += [
        (
            "hl7apy: parse_message (tolerant, no groups)",
            lambda: parse_message(
                text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False
            ),
        ),
        (
            "ACK by hand: build_ack from parsed MSH",
            lambda: build_ack(header, AckCode.APPLICATION_ACCEPT, now=now),
        ),
        (
            "ACK by hand: acknowledge(raw) end to end",
            lambda: acknowledge(raw, Outcome.ACCEPT, now=now),
        ),
    ]
    if python_hl7 is not None:
        rows.append(
            ("hl7 package: parse + create_ack", lambda: python_hl7.parse(text).create_ack())
        )
    rows.append(("hl7apy: parse + build ACK + to_er7", lambda: hl7apy_ack(raw)))
    segments = raw.count(b"\r")
    print(f"message: {len(raw)} bytes, {segments} segments, ORU^R01 v2.3.1")
    print(f"{'what':48} {'us/call':>12} {'calls/s':>12}")
    for name, function in rows:
        per_call = timed(function, seconds)
        print(f"{name:48} {per_call * 1e6:12.1f} {1 / per_call:12.0f}")


def _three_gets(raw: bytes) -> tuple[str, str, str]:
    message = Hl7Message.parse(raw)
    return message.get("MSH-10"), message.get("OBR-2.1"), message.get("OBX[8]-5")


if __name__ == "__main__":
    main()
