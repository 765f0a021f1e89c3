"""What HIS learns about one invoice message: its status and the bill's identifiers.

Read from the stored `response_transformed` stage, so it shows exactly what the adapter
replied. Only identifiers leave (bill code and number, check code, picture links, how it was
resolved): never the payer's name or the business JSON.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from engine.message import StageName

if TYPE_CHECKING:
    from engine.runtime import Engine

ADAPTER_NAME = "e_invoice"
SHOWN_FIELDS = ("method", "busNo", "resolved_by", "billBatchCode", "billNo", "random", "createTime", "ivcDateTime",
                "pictureUrl", "pictureNetUrl", "eScarletBillBatchCode", "eScarletBillNo", "eScarletRandom",
                "state", "isScarlet")


def e_invoice_destinations(engine: Engine) -> dict[str, set[str]]:
    """Channel name → names of its e_invoice destinations."""
    return {
        name: {d.config.name for d in channel.destinations if d.config.adapter == ADAPTER_NAME}
        for name, channel in engine.channels.items()
        if any(d.config.adapter == ADAPTER_NAME for d in channel.destinations)
    }


async def invoice_view(engine: Engine, message_id: str) -> dict[str, Any] | None:
    """The message's status and invoice fields, or None when it is no e_invoice message."""
    view = await engine.store.get_message(message_id, with_stages=True)
    destinations = e_invoice_destinations(engine).get(view.channel, set()) if view else set()
    if view is None or not destinations:
        return None
    result: dict[str, Any] = {"message_id": view.id, "channel": view.channel, "status": view.status}
    if view.party is not None:
        result.update(party=view.party, rule_id=view.rule_id, reason=view.reason)
    replies = [s for s in view.stages
               if s["name"] == StageName.RESPONSE_TRANSFORMED and s["destination"] in destinations]
    if replies:
        try:
            reply = json.loads(replies[-1]["body"])
        except (ValueError, UnicodeDecodeError):
            reply = {}
        if isinstance(reply, dict):
            result.update({name: reply[name] for name in SHOWN_FIELDS if name in reply})
    return result
