"""Recovery when a money-moving call's outcome is unknown: reverse it with 2601 (冲正).

The request left and no answer came (timeout after sending, connection reset): the centre
may have settled. Repeating the settlement could charge twice, so instead the engine sends
2601 with `omsgid` (the lost call's msgid) and `oinfno`. A 2601 the centre accepts, or one
it refuses because it has no such transaction, both mean: no settlement stands. When even
the reversal cannot be done, the settlement's state is unknown and needs a person.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

import structlog

from engine.adapters.base import Wire
from engine.errors import OutcomeUnknownError, PermanentError, TransientError
from plugins.yibao.centre import CentreClient
from plugins.yibao.envelope import Operator
from plugins.yibao.response import SIGN_IN_INVALID, CentreRejected

log = structlog.get_logger(__name__)

NOTHING_TO_REVERSE = re.compile(r"原交易.{0,6}(不存在|未找到)|(不存在|未找到|无此).{0,8}(交易|记录|msgid)|已冲正")


class SettlementReversed(PermanentError):
    """The lost call was reversed (or never happened): HIS must treat it as not settled."""


class SettlementUnresolved(OutcomeUnknownError):
    """Neither the lost call's answer nor a reversal could be had: manual follow-up."""


def find_psn_no(value: Any) -> str | None:
    if isinstance(value, dict):
        if value.get("psn_no"):
            return str(value["psn_no"])
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = find_psn_no(item)
            if found:
                return found
    return None


async def reverse_lost_call(
    centre: CentreClient,
    lost_envelope: dict[str, Any],
    lost: OutcomeUnknownError,
    wire: Wire,
    *,
    operator: Operator,
    sign_no: Callable[[], Awaitable[str]],
    renew_sign_no: Callable[[str], Awaitable[str]],
    attempts: int,
) -> NoReturn:
    """Reverse `lost_envelope` with 2601; always raises SettlementReversed or SettlementUnresolved."""
    oinfno, omsgid = str(lost_envelope["infno"]), str(lost_envelope["msgid"])
    facts: dict[str, object] = {
        "centre": "yibao",
        "infno": oinfno,
        "oinfno": oinfno,
        "omsgid": omsgid,
        "lost": str(lost.detail.get("condition", "no answer")),
        "settled": False,
    }
    reversal_input = {"data": {"psn_no": find_psn_no(lost_envelope["input"]) or "", "omsgid": omsgid,
                               "oinfno": oinfno}}
    last_problem = str(lost)
    current_sign_no = await _quiet(sign_no())
    for attempt in range(1, attempts + 1):
        wire.step(step="reversal", infno="2601", omsgid=omsgid, oinfno=oinfno, attempt=attempt)
        envelope = centre.envelope(
            infno="2601", input=reversal_input, operator=operator, sign_no=current_sign_no or "",
            insuplc_admdvs=lost_envelope.get("insuplc_admdvs"),
        )
        try:
            reply = await centre.post(envelope, wire)
        except CentreRejected as refused:
            text = str(refused.detail.get("err_msg", ""))
            if NOTHING_TO_REVERSE.search(text):
                raise _reversed(facts, envelope["msgid"], "nothing_to_reverse", text) from lost
            if SIGN_IN_INVALID.search(text):
                current_sign_no = await _quiet(renew_sign_no(current_sign_no or ""))
                last_problem = text
                continue
            last_problem = f"the centre refused the reversal: {text}"
            break
        except TransientError as failed:
            last_problem = f"the reversal failed too: {failed}"
            continue
        raise _reversed(facts, reply.msgid, "reversed", None) from lost
    log.error("yibao.settlement.unresolved", oinfno=oinfno, omsgid=omsgid, problem=last_problem)
    raise SettlementUnresolved(
        f"{oinfno} outcome UNKNOWN: the answer was lost ({facts['lost']}) and reversal 2601 of msgid "
        f"{omsgid} did not succeed ({last_problem}); do not settle again before it is resolved",
        detail={**facts, "condition": "settlement_unresolved", "settled": None, "reversal": "failed",
                "problem": last_problem},
    ) from lost


def _reversed(
    facts: dict[str, object], reversal_msgid: str, outcome: str, centre_text: str | None
) -> SettlementReversed:
    log.warning("yibao.settlement.reversed", oinfno=facts["oinfno"], omsgid=facts["omsgid"], outcome=outcome)
    detail = {**facts, "condition": "settlement_reversed", "reversal": outcome, "reversal_msgid": reversal_msgid}
    if centre_text:
        detail["reversal_err_msg"] = centre_text
    return SettlementReversed(
        f"{facts['oinfno']} did NOT settle: the answer was lost ({facts['lost']}) and the engine reversed "
        f"msgid {facts['omsgid']} with 2601 ({outcome}); nothing was charged",
        detail=detail,
    )


async def _quiet(fetch: Awaitable[str]) -> str | None:
    """A sign_no for the reversal, or None when signing in fails too (the 2601 then fails visibly)."""
    try:
        return await fetch
    except (TransientError, PermanentError) as exc:
        log.warning("yibao.reversal.sign_in_failed", error=str(exc))
        return None
