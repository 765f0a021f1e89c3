"""`GET /api/v1/e-invoice/messages/{message_id}`: HIS polls for the invoice it handed over.

The core status view shows no payloads, and HIS may not read stages; this answers HIS (any
role) with the status and the bill's identifiers only (see plugins/e_invoice/results.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.api.responses import error_response, json_response
from plugins.e_invoice.results import invoice_view

if TYPE_CHECKING:
    from engine.runtime import Engine


def e_invoice_routes(engine: Engine) -> list[BaseRoute]:
    async def invoice(request: Request) -> Response:
        message_id = request.path_params["message_id"]
        found = await invoice_view(engine, message_id)
        if found is None:
            return error_response(404, "unknown_message", f"no e-invoice message {message_id}",
                                  message_id=message_id)
        return json_response(found)

    return [Route("/e-invoice/messages/{message_id}", invoice, methods=["GET"])]
