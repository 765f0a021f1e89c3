from datetime import datetime

import pytest

from engine.mllp.ack import AckError, build_ack
from engine.mllp.header import Hl7HeaderError, MshHeader
from plugins.lis_device.hl7.schema import field_name, validate
from tests.plugins.lis_device.samples import fixture_bytes


@pytest.mark.parametrize(
    ("path", "version", "name"),
    [
        ("PID-5.1", "2.5", "Patient Name / Family Name"),
        ("OBX-5", "2.3.1", "Observation Value"),
        ("OBX[2]-3.2", "2.5", "Observation Identifier / Text"),
        ("MSH-9.2", "2.3.1", "Message Type / Trigger Event"),
        ("PID-3(2).4.1", "2.5", "Patient Identifier List / Assigning Authority / Namespace Id"),
        ("ZDS-1", "2.5", ""),
        ("PID-99", "2.5", ""),
        ("OBX-5", "9.9", ""),
        ("not a path", "2.5", ""),
    ],
)
def test_field_names_for_diff(path, version, name):
    assert field_name(path, version) == name


def test_a_built_ack_is_valid():
    header = MshHeader.parse("MSH|^~\\&|DEV|LAB|LIS|HOSP|2024||ORU^R01|9|P|2.5")
    ack = build_ack(header, "AE", error=AckError("207", "x"), now=datetime(2024, 1, 1))
    problems = validate(ack)
    # hl7apy's table 0396 lacks the HL7nnnn pattern, so only a warning may remain.
    assert [problem for problem in problems if not problem.startswith("Warning")] == []


def test_problems_are_listed_and_lf_input_is_read_per_segment():
    raw = fixture_bytes("hl7", "oru_device_quirks.hl7")
    problems = validate(raw)
    assert "Error: Missing required child OBR.OBR_4" in problems
    assert validate(raw.replace(b"\r", b"\n")) == problems


def test_no_msh_raises_like_the_reader():
    with pytest.raises(Hl7HeaderError):
        validate(b"PID|1")
