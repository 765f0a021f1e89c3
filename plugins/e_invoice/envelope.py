"""The platform envelope (§2.1): base64 business JSON, a noise, and an upper-case MD5 sign.

Requests are `{appid, data, noise, version, sign}` with `data` the base64 of the UTF-8
business JSON. The sign is MD5 over `appid=…&data=…&noise=…&key=<secret>&version=…` in that
fixed order (not alphabetical). Answers carry the same fields; their `data` decodes to
`{"result", "message"}` where `message` is base64 of the business JSON or an error text.
An answer whose sign does not match is never believed: `PermanentError` with condition
`bad_signature`, blamed on the platform by rule.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

from engine.errors import PermanentError

SUCCESS = "S0000"
MAX_RAW_IN_DETAIL = 2000


@dataclass(frozen=True)
class Credentials:
    appid: str
    key: str
    version: str = "1.0"


def encode_data(business: Any) -> str:
    """base64 of the compact UTF-8 JSON the platform expects."""
    text = json.dumps(business, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def sign(*, appid: str, data: str, noise: str, key: str, version: str) -> str:
    text = f"appid={appid}&data={data}&noise={noise}&key={key}&version={version}"
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def new_noise() -> str:
    return uuid.uuid4().hex


def seal(credentials: Credentials, business: Any, *, noise: str | None = None) -> dict[str, str]:
    """The request envelope for one call."""
    data = encode_data(business)
    noise = noise or new_noise()
    return {
        "appid": credentials.appid,
        "data": data,
        "noise": noise,
        "version": credentials.version,
        "sign": sign(appid=credentials.appid, data=data, noise=noise, key=credentials.key,
                     version=credentials.version),
    }


def signature_holds(credentials: Credentials, envelope: dict[str, Any]) -> bool:
    """Whether `envelope` (request or answer) carries the sign our key gives its fields.
    A missing appid/version means ours: the sources show answers without them [U]."""
    expected = sign(
        appid=str(envelope.get("appid") or credentials.appid),
        data=str(envelope.get("data", "")),
        noise=str(envelope.get("noise", "")),
        key=credentials.key,
        version=str(envelope.get("version") or credentials.version),
    )
    return hmac.compare_digest(expected, str(envelope.get("sign", "")).upper())


@dataclass(frozen=True)
class PlatformAnswer:
    """A verified, decoded answer. `business` is the decoded message JSON on success, and
    `text` the decoded message (JSON text or a plain error text) either way."""

    result: str
    text: str
    business: Any

    @property
    def ok(self) -> bool:
        return self.result == SUCCESS


def open_answer(credentials: Credentials, body: bytes) -> PlatformAnswer:
    """Parse, verify and decode one answer body; PermanentError for anything unbelievable."""
    try:
        envelope = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise unreadable("the platform's answer is not JSON", body) from exc
    if not isinstance(envelope, dict) or "data" not in envelope:
        raise unreadable("the platform's answer has no data field", body)
    if not signature_holds(credentials, envelope):
        raise PermanentError(
            "the platform's answer carries a wrong sign: it may be forged or corrupted",
            detail={"condition": "bad_signature", "platform": "e_invoice", "raw": _excerpt(body)},
        )
    try:
        inner = json.loads(base64.b64decode(str(envelope["data"]), validate=True))
        result = str(inner["result"])
        text = base64.b64decode(str(inner.get("message") or "")).decode("utf-8")
    except (ValueError, KeyError, TypeError) as exc:
        raise unreadable(f"the platform's answer data cannot be decoded: {exc}", body) from exc
    business: Any = None
    if result == SUCCESS:
        try:
            business = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            raise unreadable("the platform's success message is not JSON", body) from exc
    return PlatformAnswer(result=result, text=text, business=business)


def answer_envelope(credentials: Credentials, result: str, message: Any, *, noise: str | None = None) -> dict[str, str]:
    """An answer as the platform builds it (the simulator's side): `message` is JSON-encoded
    unless it is already a plain text."""
    text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
    inner = {"result": result, "message": base64.b64encode(text.encode("utf-8")).decode("ascii")}
    return seal(credentials, inner, noise=noise)


def open_request(credentials: Credentials, envelope: dict[str, Any]) -> Any:
    """The business JSON of a request envelope (the simulator's side); ValueError when the
    appid, version or sign is wrong or the data does not decode."""
    if envelope.get("appid") != credentials.appid:
        raise ValueError("appid unknown")
    if not signature_holds(credentials, envelope):
        raise ValueError("sign mismatch")
    return json.loads(base64.b64decode(str(envelope.get("data", "")), validate=True))


def unreadable(reason: str, body: bytes) -> PermanentError:
    return PermanentError(reason, detail={"condition": "bad_envelope", "platform": "e_invoice",
                                          "raw": _excerpt(body)})


def _excerpt(body: bytes) -> str:
    return body[:MAX_RAW_IN_DETAIL].decode("utf-8", errors="replace")
