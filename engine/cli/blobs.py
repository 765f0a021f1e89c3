"""`hisbridge blob MESSAGE_ID REF`: an attachment a message names (a report's PDF, an image).

`hisbridge show` prints a message's stages, where attachments appear as references
(`blob:sha256:…`); this command fetches one. The read is audited like `show` (action `blob`),
and only blobs the message names (its business key `blob`) are served.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.cli import CliContext
from engine.cli.explain import _reader, _run
from engine.store.blobs import Blob, BlobRefError, digest_of
from engine.store.store import MessageStore

BLOB_ACTION = "blob"


@click.command("blob")
@click.argument("message_id")
@click.argument("ref")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="write the bytes to this file (default: stdout)")
@click.option("--as", "who", help="name recorded in the audit log (default: the OS user)")
@click.pass_obj
def blob(obj: CliContext, message_id: str, ref: str, output: Path | None, who: str | None) -> None:
    """Write the attachment REF (blob:sha256:…) that message MESSAGE_ID names, byte for byte.

    Reading it is audited."""
    try:
        digest_of(ref)
    except BlobRefError as exc:
        raise click.BadParameter(str(exc), param_hint="REF") from exc

    async def fetch(store: MessageStore) -> Blob:
        if await store.get_message(message_id) is None:
            raise click.ClickException(f"no message with id {message_id}")
        if ref not in await store.message_blob_refs(message_id):
            raise click.ClickException(f"message {message_id} names no blob {ref}")
        found = await store.get_blob(ref)
        if found is None:
            raise click.ClickException(f"blob {ref} is not stored (pruned?)")
        await store.audit_read(who=_reader(who), message_id=message_id, action=BLOB_ACTION, remote="cli")
        return found

    found = _run(obj, fetch)
    if output is None:
        sys.stdout.buffer.write(found.data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(found.data)
    click.echo(f"{found.content_type}, {found.size} bytes{f' → {output}' if output else ''}", err=True)


commands = [blob]
