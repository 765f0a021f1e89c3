"""HL7 v2 acknowledgements: which mode, which code, and the ACK message itself.

Mode (HL7 v2 chapter 2, table 0155): original mode (one application ACK, AA/AE/AR) when
MSH-15 and MSH-16 are both empty; enhanced mode (an accept ACK, CA/CE/CR) when either
holds a table-0155 value (AL, NE, ER, SU). Values outside the table are not ack requests:
Mindray writes its result type (0 patient, 2 QC) into MSH-16, and answering such a device
in enhanced mode would break it. A per-device `override` settles what the rule cannot.

The ACK is built by hand, not with hl7apy: bench/hl7_parse.py measures both, and the
hand-built one is two orders of magnitude cheaper on the path where a device waits. The
tests validate the output with hl7apy's structure knowledge for every version we emit.
Rules: sender and receiver swapped, MSH-7 now, a fresh MSH-10, MSH-11/12/18 and the
separators copied from the message, MSA-2 = the original MSH-10, and on error an ERR
segment in the shape of the message's version (ERR-1 up to v2.4, ERR-2..ERR-8 from v2.5).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import structlog

from engine.mllp.header import Hl7HeaderError, MshHeader, Separators, decode_message

log = structlog.get_logger(__name__)

ACK_REQUEST_CODES = frozenset({"AL", "NE", "ER", "SU"})


class AckMode(StrEnum):
    ORIGINAL = "original"
    ENHANCED = "enhanced"


class AckCode(StrEnum):
    APPLICATION_ACCEPT = "AA"
    APPLICATION_ERROR = "AE"
    APPLICATION_REJECT = "AR"
    COMMIT_ACCEPT = "CA"
    COMMIT_ERROR = "CE"
    COMMIT_REJECT = "CR"


class Outcome(StrEnum):
    """What the receiver decided; `ack_code()` turns it into the code for the mode.

    ERROR: the message itself is wrong (structure, missing field); the sender should fix it.
    REJECT: unsupported type/version/processing id, or a receiver problem unrelated to the
    message (store down); the sender may send the same message again later.
    """

    ACCEPT = "accept"
    ERROR = "error"
    REJECT = "reject"


_CODES = {
    (AckMode.ORIGINAL, Outcome.ACCEPT): AckCode.APPLICATION_ACCEPT,
    (AckMode.ORIGINAL, Outcome.ERROR): AckCode.APPLICATION_ERROR,
    (AckMode.ORIGINAL, Outcome.REJECT): AckCode.APPLICATION_REJECT,
    (AckMode.ENHANCED, Outcome.ACCEPT): AckCode.COMMIT_ACCEPT,
    (AckMode.ENHANCED, Outcome.ERROR): AckCode.COMMIT_ERROR,
    (AckMode.ENHANCED, Outcome.REJECT): AckCode.COMMIT_REJECT,
}


def ack_mode(header: MshHeader, override: AckMode | str | None = None) -> AckMode:
    """The acknowledgement mode for a received message (see the module docstring)."""
    if override:
        return AckMode(override)
    requested = {header.accept_ack_type, header.application_ack_type} & ACK_REQUEST_CODES
    return AckMode.ENHANCED if requested else AckMode.ORIGINAL


def ack_code(mode: AckMode, outcome: Outcome) -> AckCode:
    return _CODES[(mode, outcome)]


def accept_ack_wanted(header: MshHeader, mode: AckMode, outcome: Outcome) -> bool:
    """Whether to send the accept ACK at all: always in original mode; in enhanced mode as
    MSH-15 asks (AL or empty: always, NE: never, ER: only on error/reject, SU: only on
    success)."""
    if mode is AckMode.ORIGINAL:
        return True
    requested = header.accept_ack_type
    if requested == "NE":
        return False
    if requested == "ER":
        return outcome is not Outcome.ACCEPT
    if requested == "SU":
        return outcome is Outcome.ACCEPT
    return True


@dataclass(frozen=True, slots=True)
class AckError:
    """What was wrong, for MSA-3/MSA-6 and the ERR segment.

    `condition` is an HL7 table 0357 code: 100 segment sequence, 101 required field missing,
    102 data type, 103 table value not found, 200 unsupported message type, 201 unsupported
    event, 202 unsupported processing id, 203 unsupported version, 204 unknown key,
    205 duplicate key, 206 record locked, 207 application internal error.
    `location` is the segment, its position and field (`("MSH", 1, 9)`), when known.
    """

    condition: str
    text: str
    location: tuple[str, int, int] | None = None
    severity: str = "E"


CONDITION_NAMES = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}


def _new_control_id() -> str:
    return uuid.uuid4().hex[:20]


def _version_at_least(version: str, major: int, minor: int) -> bool:
    numbers = version.split(".")
    try:
        return (int(numbers[0]), int(numbers[1] if len(numbers) > 1 else 0)) >= (major, minor)
    except ValueError:
        return False


def _err_segment(error: AckError, version: str, separators: Separators) -> str:
    s = separators
    name = CONDITION_NAMES.get(error.condition, "")
    segment, position, field_number = error.location or ("", 0, 0)
    where = s.component.join((segment, str(position), str(field_number))) if error.location else ""
    if _version_at_least(version, 2, 5):
        code = s.component.join((error.condition, name, "HL70357"))
        fields = ["ERR", "", where, code, error.severity, "", "", s.escape_text(error.text)]
    else:
        code = s.subcomponent.join((error.condition, name, "HL70357"))
        location = where or s.component.join(("", "", ""))
        fields = ["ERR", location + s.component + code]
    return s.field.join(fields)


def build_ack(
    header: MshHeader,
    code: AckCode | str,
    *,
    error: AckError | None = None,
    text: str = "",
    control_id: str | None = None,
    now: datetime | None = None,
    copy_fields: tuple[int, ...] = (),
) -> str:
    """The ACK for a message whose MSH is `header`, segments ended by CR.

    `copy_fields` echoes more MSH fields from the message (Mindray wants MSH-16 back).
    """
    s = header.separators
    code = AckCode(code)
    version = header.version
    trigger = header.trigger_event
    if _version_at_least(version, 2, 3):
        message_type = s.component.join(("ACK", trigger, "ACK"))
    else:
        message_type = s.component.join(("ACK", trigger)) if trigger else "ACK"
    msh = [""] * max((19, *copy_fields))
    msh[0:2] = ["MSH", s.encoding_characters]
    msh[2], msh[3] = header.field(5), header.field(6)
    msh[4], msh[5] = header.field(3), header.field(4)
    msh[6] = (now or datetime.now()).strftime("%Y%m%d%H%M%S")
    msh[8] = message_type
    msh[9] = control_id or _new_control_id()
    msh[10], msh[11] = header.field(11), header.field(12)
    for number in copy_fields:
        msh[number - 1] = header.field(number)
    if code in (AckCode.COMMIT_ACCEPT, AckCode.COMMIT_ERROR, AckCode.COMMIT_REJECT):
        msh[14], msh[15] = "NE", "NE"
    msh[17] = header.field(18)
    msa_text = text or (error.text if error else "")
    msa = ["MSA", code.value, header.control_id, s.escape_text(msa_text)]
    if error and not _version_at_least(version, 2, 5):
        name = CONDITION_NAMES.get(error.condition, "")
        msa += ["", "", error.condition + s.component + name]
    segments = [s.field.join(msh).rstrip(s.field), s.field.join(msa).rstrip(s.field)]
    if error:
        segments.append(_err_segment(error, version, s))
    return "\r".join(segments) + "\r"


@dataclass(frozen=True, slots=True)
class AckReply:
    """An encoded ACK (without MLLP framing) and what it says."""

    payload: bytes
    code: AckCode
    mode: AckMode
    send: bool


def acknowledge(
    raw: bytes,
    outcome: Outcome,
    *,
    error: AckError | None = None,
    default_charset: str = "utf-8",
    mode_override: AckMode | str | None = None,
    copy_fields: tuple[int, ...] = (),
    control_ids: Callable[[], str] = _new_control_id,
    now: datetime | None = None,
) -> AckReply:
    """Decode, read the MSH, and build the encoded ACK for `raw` in one call.

    Bytes without a usable MSH still get an answer: an AR (or CR when the override says
    enhanced) with an ERR segment, version 2.5, so the device is never left waiting. Its
    MSA-2 is empty, because there is no control id to echo.
    """
    decoded = decode_message(raw, default_charset)
    try:
        header = MshHeader.parse(decoded.text)
    except Hl7HeaderError as exc:
        header = MshHeader.parse("MSH|^~\\&|||||||||P|2.5")
        mode = AckMode(mode_override) if mode_override else AckMode.ORIGINAL
        error = error or AckError("100", exc.reason)
        code = ack_code(mode, Outcome.REJECT)
        text = build_ack(header, code, error=error, control_id=control_ids(), now=now)
        return AckReply(text.encode(decoded.codec, errors="replace"), code, mode, True)
    mode = ack_mode(header, mode_override)
    code = ack_code(mode, outcome)
    text = build_ack(
        header, code, error=error, control_id=control_ids(), now=now, copy_fields=copy_fields
    )
    send = accept_ack_wanted(header, mode, outcome)
    return AckReply(text.encode(decoded.codec, errors="replace"), code, mode, send)
