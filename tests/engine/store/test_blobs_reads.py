"""Reading a blob through the API (operator, audited) and `hisbridge blob`, on a real daemon."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.cli import main
from engine.message import Status
from engine.store.blobs import BLOB_KEY, blob_ref
from tests.e2e.harness import HIS_TOKEN, OPERATOR_TOKEN, his, running_daemon, write_daemon_conf
from tests.engine.store.conftest import make_message

PDF = b"%PDF-1.4\n% synthetic report for a blob read\n" + bytes(range(256)) * 8
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("E2E_HIS_TOKEN", HIS_TOKEN)
    monkeypatch.setenv("E2E_OPERATOR_TOKEN", OPERATOR_TOKEN)
    return write_daemon_conf(tmp_path, {})


def audited(conf: Path) -> list[tuple[str, str, str, str]]:
    engine = sa.create_engine(f"sqlite:///{conf.parent / 'var' / 'hisbridge.db'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT who, message_id, action, remote FROM payload_reads"))
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        engine.dispose()


async def test_an_operator_reads_a_blob_a_message_names(conf: Path, client: httpx.AsyncClient) -> None:
    async with running_daemon(conf) as daemon:
        store = daemon.engine.store
        ref = await store.put_blob(PDF, "application/pdf")
        message = make_message(keys={BLOB_KEY: ref}, status=Status.SENT, destinations={})
        await store.create_message(message)
        other = make_message(status=Status.SENT, destinations={})
        await store.create_message(other)
        base = f"{daemon.url}/api/v1/messages"

        read = await client.get(f"{base}/{message.id}/blobs/{ref}", headers=OPERATOR)
        as_his = await client.get(f"{base}/{message.id}/blobs/{ref}", headers=his())
        not_named = await client.get(f"{base}/{other.id}/blobs/{ref}", headers=OPERATOR)
        malformed = await client.get(f"{base}/{message.id}/blobs/sha256:00", headers=OPERATOR)
        missing = await client.get(f"{base}/{message.id}/blobs/{blob_ref(b'other')}", headers=OPERATOR)

    assert read.status_code == 200
    assert (read.content, read.headers["content-type"], read.headers["x-hisbridge-blob"]) == (
        PDF, "application/pdf", ref)
    assert as_his.status_code == 403
    assert (not_named.status_code, not_named.json()["error"]["code"]) == (404, "unknown_blob")
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "bad_blob_ref")
    assert missing.status_code == 404
    assert audited(conf) == [("operator", message.id, "blob", "127.0.0.1")]


async def test_show_names_the_attachments_and_hisbridge_blob_writes_them(conf: Path, tmp_path: Path) -> None:
    async with running_daemon(conf) as daemon:
        ref = await daemon.engine.store.put_blob(PDF, "application/pdf")
        message = make_message(keys={BLOB_KEY: ref}, status=Status.SENT, destinations={})
        await daemon.engine.store.create_message(message)
    target = tmp_path / "report.pdf"

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["--conf", str(conf), "blob", *args])
        return result.exit_code, result.output

    shown = await asyncio.to_thread(CliRunner().invoke, main, ["--conf", str(conf), "show", message.id])
    assert f"attachment {ref}: hisbridge blob {message.id} {ref} -o FILE" in shown.output
    code, said = await asyncio.to_thread(run, message.id, ref, "-o", str(target), "--as", "dr-wang")
    assert code == 0, said
    assert target.read_bytes() == PDF and f"application/pdf, {len(PDF)} bytes" in said
    code, said = await asyncio.to_thread(run, message.id, "blob:sha256:nope")
    assert code == 2 and "not a blob reference" in said
    assert [row for row in audited(conf) if row[2] == "blob"] == [("dr-wang", message.id, "blob", "cli")]
