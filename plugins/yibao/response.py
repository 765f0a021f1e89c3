"""Parsing the common response envelope (公共出参) and turning failures into engine errors.

`infcode` arrives as a number or a string ("0"/"-1"); `err_msg` carries the platform's
`(traceId@nodeIP)` suffix, split out so the trace id can be quoted to the centre and the
text matched by fault rules without it. An answer that is not JSON or has no `infcode`
is the centre's fault (party third_party by rule) and keeps its raw bytes in the error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from engine.errors import PermanentError

_TRACE_SUFFIX = re.compile(r"^(?P<text>.*?)\s*[(（](?P<trace>[0-9A-Za-z-]+)@(?P<ip>[0-9A-Fa-f.:]+)[)）]\s*$", re.DOTALL)
SIGN_IN_INVALID = re.compile(
    r"签到.{0,12}(失效|无效|过期|不存在|超时)|请先签到|未签到|sign_no.{0,20}(无效|invalid)", re.IGNORECASE
)
"""err_msg texts that mean the sign-in (sign_no) is no longer accepted."""

MAX_RAW_IN_DETAIL = 2000


@dataclass(frozen=True)
class CentreAnswer:
    """One parsed response envelope."""

    infcode: int
    err_msg: str | None
    message: str
    trace_id: str | None
    node_ip: str | None
    output: Any
    inf_refmsgid: str | None
    refmsg_time: str | None
    respond_time: str | None
    warn_msg: str | None
    envelope: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.infcode == 0

    @property
    def sign_in_invalid(self) -> bool:
        return not self.ok and SIGN_IN_INVALID.search(self.message) is not None

    def error_detail(self) -> dict[str, object]:
        detail: dict[str, object] = {
            "infcode": self.infcode,
            "err_msg": self.message,
            "trace_id": self.trace_id,
        }
        if self.node_ip:
            detail["node_ip"] = self.node_ip
        if self.inf_refmsgid:
            detail["inf_refmsgid"] = self.inf_refmsgid
        return detail


class CentreRejected(PermanentError):
    """The centre answered `infcode != 0`; `detail` holds infcode, err_msg and trace_id."""


def is_sign_in_invalid(refusal: CentreAnswer | BaseException | str | None) -> bool:
    """True when a centre refusal means the sign-in (sign_no) is no longer accepted, so the
    caller should sign in again (9001) and repeat the call once under a new msgid.

    Takes a parsed answer, an error raised for one (its `detail["err_msg"]`, as
    `CentreRejected` carries it), or the err_msg text itself (with or without its trace suffix).
    """
    if isinstance(refusal, CentreAnswer):
        return refusal.sign_in_invalid
    if isinstance(refusal, BaseException):
        detail = getattr(refusal, "detail", None)
        refusal = str(detail.get("err_msg") or "") if isinstance(detail, dict) else None
    if not refusal:
        return False
    return SIGN_IN_INVALID.search(split_trace(refusal)[0]) is not None


def split_trace(err_msg: str | None) -> tuple[str, str | None, str | None]:
    """`("text", trace_id, node_ip)` from `"text(traceId@ip)"`; no suffix → `(text, None, None)`."""
    if not err_msg:
        return "", None, None
    found = _TRACE_SUFFIX.match(err_msg)
    if found is None:
        return err_msg, None, None
    return found["text"], found["trace"], found["ip"]


def parse_infcode(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    raise ValueError(f"infcode {value!r} is not a number")


def parse_answer(body: bytes, *, http_status: int | None = None) -> CentreAnswer:
    """Parse a response envelope; PermanentError (condition `bad_envelope` or
    `gateway_rejected`) when the bytes are not one."""
    try:
        envelope = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad_envelope(f"the centre's answer is not JSON: {exc}", body, http_status) from exc
    if not isinstance(envelope, dict):
        raise _bad_envelope("the centre's answer is not a JSON object", body, http_status)
    if "infcode" not in envelope:
        if "code" in envelope and ("message" in envelope or "msg" in envelope):
            raise _gateway_rejected(envelope, body, http_status)
        raise _bad_envelope("the centre's answer has no infcode", body, http_status)
    try:
        infcode = parse_infcode(envelope["infcode"])
    except ValueError as exc:
        raise _bad_envelope(str(exc), body, http_status) from exc
    err_msg = envelope.get("err_msg")
    err_msg = None if err_msg is None else str(err_msg)
    message, trace_id, node_ip = split_trace(err_msg)
    return CentreAnswer(
        infcode=infcode,
        err_msg=err_msg,
        message=message,
        trace_id=trace_id,
        node_ip=node_ip,
        output=envelope.get("output"),
        inf_refmsgid=envelope.get("inf_refmsgid") or None,
        refmsg_time=envelope.get("refmsg_time"),
        respond_time=envelope.get("respond_time"),
        warn_msg=envelope.get("warn_msg"),
        envelope=envelope,
    )


def rejection(answer: CentreAnswer, infno: str) -> CentreRejected:
    """The error for an answer with `infcode != 0`."""
    detail = answer.error_detail()
    detail["infno"] = infno
    trace = f" (trace {answer.trace_id})" if answer.trace_id else ""
    return CentreRejected(f"centre rejected {infno}: infcode {answer.infcode}: {answer.message}{trace}", detail=detail)


def _raw_detail(body: bytes, http_status: int | None) -> dict[str, object]:
    detail: dict[str, object] = {"raw": body[:MAX_RAW_IN_DETAIL].decode("utf-8", errors="replace")}
    if http_status is not None:
        detail["http_status"] = http_status
    return detail


def _bad_envelope(reason: str, body: bytes, http_status: int | None) -> PermanentError:
    return PermanentError(reason, detail={"condition": "bad_envelope", **_raw_detail(body, http_status)})


def _gateway_rejected(envelope: dict[str, Any], body: bytes, http_status: int | None) -> PermanentError:
    text = str(envelope.get("message") or envelope.get("msg") or "")
    return PermanentError(
        f"the gateway rejected the call: {envelope.get('code')} {text}",
        detail={
            "condition": "gateway_rejected",
            "gateway_code": envelope.get("code"),
            "err_msg": text,
            **_raw_detail(body, http_status),
        },
    )
