"""The yibao plugin's public API: what other plugins (drug_trace for 3501–3507) may import.

Everything here is kept stable; the rest of the package is internal. A typical use:

    deployment = Deployment("H44030400123", "某某医院", "440300")
    spec = validate_input("3505", input)                 # InputError naming each bad field
    centre = CentreClient(http=..., base_url=..., deployment=deployment,
                          signer=build_signer(signing_config, base_url=..., fixmedins_code=...),
                          msgids=MsgIdGenerator(deployment.fixmedins_code, node=0, nodes=1))
    sessions = SignInSessions(centre, mac=..., ip=...)
    envelope = centre.envelope(infno="3505", input=input, operator=operator,
                               sign_no=await sessions.sign_no(operator, wire),
                               insuplc_admdvs=area)
    reply = await centre.post(envelope, wire)            # CentreRejected when infcode != 0

or, without a CentreClient, `build_envelope(...)` then `await sign(signer, envelope, http)`
for the exact body and headers to post. A refusal that `is_sign_in_invalid(error)` calls for
`await sessions.renew(operator, failed_sign_no, wire)` and one repeat under a new msgid.
`GatewaySigner()` (what `build_signer(NoSigning(), ...)` gives) adds no gateway headers.
Adapters that reuse the yibao rules get them by putting `centre: yibao` in their errors' detail
(CentreClient.post does).
"""

from __future__ import annotations

from typing import Any

import httpx

from plugins.yibao.centre import (
    CentreClient,
    CentreReply,
    EndpointPaths,
    request_headers,
    sealed_body,
)
from plugins.yibao.envelope import ENVELOPE_FIELDS, Deployment, Operator, build_envelope
from plugins.yibao.msgid import MsgIdGenerator
from plugins.yibao.plugin import fault_rules
from plugins.yibao.response import (
    CentreAnswer,
    CentreRejected,
    is_sign_in_invalid,
    parse_answer,
    split_trace,
)
from plugins.yibao.session import SignInSessions
from plugins.yibao.settlement import SettlementReversed, SettlementUnresolved
from plugins.yibao.signing import GatewaySigner, NoSigning, SigningConfig, build_signer
from plugins.yibao.transactions import (
    InputProblems,
    Transaction,
    catalogue,
    transaction,
    validate_input,
)


async def sign(
    signer: GatewaySigner, envelope: dict[str, Any], http: httpx.AsyncClient
) -> tuple[bytes, dict[str, str]]:
    """The exact body and headers to POST for `envelope` under `signer`'s scheme."""
    body = sealed_body(signer, envelope)
    return body, await request_headers(signer, body, http)


__all__ = [
    "ENVELOPE_FIELDS",
    "CentreAnswer",
    "CentreClient",
    "CentreRejected",
    "CentreReply",
    "Deployment",
    "EndpointPaths",
    "GatewaySigner",
    "InputProblems",
    "MsgIdGenerator",
    "NoSigning",
    "Operator",
    "SettlementReversed",
    "SettlementUnresolved",
    "SignInSessions",
    "SigningConfig",
    "Transaction",
    "build_envelope",
    "build_signer",
    "catalogue",
    "fault_rules",
    "is_sign_in_invalid",
    "parse_answer",
    "sign",
    "split_trace",
    "transaction",
    "validate_input",
]
