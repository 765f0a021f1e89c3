"""Blob reads: `GET /api/v1/messages/{id}/blobs/{ref}` (operator), audited like stage reads.

A blob (a report's PDF or image, see engine.store.blobs) is reached through a message that
names it (business key `blob`), so reading it is a payload read of that message: the token's
name and the client address go to the audit table. The answer is the bytes themselves with
their stored content type, so `curl -o report.pdf` gives the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from engine.api.auth import Caller
from engine.api.responses import error_response
from engine.store.blobs import BlobRefError, digest_of

if TYPE_CHECKING:
    from engine.runtime import Engine

BLOB_ACTION = "blob"
"""The audit table's `action` for a blob read."""


class BlobEndpoints:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def blob(self, request: Request, caller: Caller) -> Response:
        message_id = request.path_params["message_id"]
        ref = request.path_params["ref"]
        try:
            digest = digest_of(ref)
        except BlobRefError as exc:
            return error_response(400, "bad_blob_ref", str(exc))
        store = self.engine.store
        if await store.get_message(message_id) is None:
            return error_response(404, "unknown_message", f"no message {message_id}", message_id=message_id)
        if ref not in await store.message_blob_refs(message_id):
            return error_response(
                404, "unknown_blob", f"message {message_id} names no blob {ref}", message_id=message_id
            )
        blob = await store.get_blob(ref)
        if blob is None:
            return error_response(404, "no_blob", f"blob {ref} is not stored", message_id=message_id)
        remote = request.client.host if request.client else "unknown"
        await store.audit_read(who=caller.name, message_id=message_id, action=BLOB_ACTION, remote=remote)
        return Response(blob.data, media_type=blob.content_type, headers={
            "X-Hisbridge-Blob": ref,
            "Content-Disposition": f'attachment; filename="{digest[:16]}"',
        })
