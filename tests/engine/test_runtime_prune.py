"""The daemon's housekeeping prunes messages and then the attachments nobody names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.engine.pipeline.test_routing_and_storage import destination, start_engine


async def test_prune_removes_old_finished_messages_then_unnamed_blobs(tmp_path: Path) -> None:
    engine = await start_engine(tmp_path, {"reports": {"destinations": [destination("his", "his")]}})
    try:
        orphan = await engine.store.put_blob(b"%PDF-1.4 synthetic", "application/pdf")
        assert await engine.prune(older_than=datetime.now(UTC) - timedelta(days=1)) == (0, 0)
        assert await engine.prune(older_than=datetime.now(UTC) + timedelta(seconds=1)) == (0, 1)
        assert await engine.store.get_blob(orphan) is None
    finally:
        await engine.stop()
