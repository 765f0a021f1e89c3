"""Sign-in (9001) once per operator per day, `sign_no` cached and reused; sign-out (9002).

A sign-in is made lazily by the first call of an operator on a day. When the centre says
a sign-in is invalid, `renew()` drops it (only if it is still the one that failed, so
concurrent callers sign in once) and signs in again. Each sign-in is its own wire step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import structlog

from engine.adapters.base import Wire
from engine.errors import OutcomeUnknownError, PermanentError, TransientError
from plugins.yibao.centre import CentreClient
from plugins.yibao.envelope import Operator

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SignIn:
    sign_no: str
    day: date
    sign_time: str | None = None


class SignInSessions:
    def __init__(
        self,
        centre: CentreClient,
        *,
        mac: str,
        ip: str,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.centre = centre
        self.mac = mac
        self.ip = ip
        self._clock = clock
        self._signed_in: dict[str, tuple[Operator, SignIn]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.sign_ins = 0

    def current(self, operator: Operator) -> SignIn | None:
        held = self._signed_in.get(operator.opter)
        if held is None or held[1].day != self._clock().date():
            return None
        return held[1]

    async def sign_no(self, operator: Operator, wire: Wire) -> str:
        """The operator's sign_no for today, signing in first when there is none."""
        held = self.current(operator)
        if held is not None:
            return held.sign_no
        async with self._lock(operator):
            held = self.current(operator)
            if held is None:
                held = await self._sign_in(operator, wire)
            return held.sign_no

    async def renew(self, operator: Operator, failed_sign_no: str, wire: Wire) -> str:
        """Sign in again after the centre refused `failed_sign_no`."""
        async with self._lock(operator):
            held = self.current(operator)
            if held is None or held.sign_no == failed_sign_no:
                log.info("yibao.sign_in.renew", opter=operator.opter)
                held = await self._sign_in(operator, wire)
            return held.sign_no

    async def sign_out_all(self, wire: Wire) -> None:
        """9002 for every operator signed in today; failures are logged, never raised."""
        held, self._signed_in = dict(self._signed_in), {}
        for operator, sign_in in held.values():
            if sign_in.day != self._clock().date():
                continue
            wire.step(step="sign_out", infno="9002", opter=operator.opter)
            envelope = self.centre.envelope(
                infno="9002",
                input={"signOut": {"sign_no": sign_in.sign_no, "opter_no": operator.opter}},
                operator=operator,
                sign_no=sign_in.sign_no,
            )
            try:
                await self.centre.post(envelope, wire)
            except Exception as exc:  # noqa: BLE001 - shutdown goes on whatever the centre says
                log.warning("yibao.sign_out.failed", opter=operator.opter, error=str(exc))

    async def _sign_in(self, operator: Operator, wire: Wire) -> SignIn:
        wire.step(step="sign_in", infno="9001", opter=operator.opter)
        envelope = self.centre.envelope(
            infno="9001",
            input={"signIn": {"opter_no": operator.opter, "mac": self.mac, "ip": self.ip}},
            operator=operator,
        )
        try:
            reply = await self.centre.post(envelope, wire)
        except OutcomeUnknownError as lost:
            # A lost sign-in is harmless to repeat, and the business call was not sent.
            raise TransientError(
                f"sign-in (9001) got no answer, the call was not sent: {lost}",
                detail={**lost.detail, "step": "sign_in"},
            ) from lost
        output = reply.output if isinstance(reply.output, dict) else {}
        node = output.get("signinoutb") or {}
        sign_no = str(node.get("sign_no") or "")
        if not sign_no:
            raise PermanentError(
                "the centre accepted 9001 but returned no sign_no",
                detail={"centre": "yibao", "infno": "9001", "condition": "bad_envelope"},
            )
        sign_in = SignIn(sign_no, self._clock().date(), node.get("sign_time"))
        self._signed_in[operator.opter] = (operator, sign_in)
        self.sign_ins += 1
        log.info("yibao.sign_in.ok", opter=operator.opter)
        return sign_in

    def _lock(self, operator: Operator) -> asyncio.Lock:
        return self._locks.setdefault(operator.opter, asyncio.Lock())
