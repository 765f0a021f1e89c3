"""`hisbridge messages/show/diff/stats` against a real SQLite message store."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pluggy
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from engine import hookspecs
from engine.attribution import builtin as attribution_builtin
from engine.cli import CliContext, main
from engine.formats import builtin as formats_builtin
from engine.ids import new_id
from engine.message import Delivery, Party, Payload, StageName, Status, Verdict
from engine.store.records import AttemptRecord, DeliveryUpdate, NewDelivery, NewMessage, StageRecord
from engine.store.schema import payload_reads
from engine.store.store import MessageStore

ID_NUMBER = "110101199003071234"
RAW = {
    "infno": "2207",
    "input": {"data": {"psn_no": "P1", "psn_name": "测试甲", "certno": ID_NUMBER, "amt": "12.50"}},
}
TRANSFORMED = {
    "infno": "2207",
    "input": {
        "data": {
            "psn_no": "P1",
            "psn_name": "测试甲",
            "certno": ID_NUMBER,
            "amt": 12.5,
            "insutype": "310",
        }
    },
}
BAD_GATEWAY = Verdict(
    Party.THIRD_PARTY,
    "core.http.server_error",
    "the destination failed (HTTP 502): http_status: HTTP 502",
)


@dataclass
class Stored:
    conf: Path
    db_url: str
    settle: str  # failed sync settlement with raw/transformed/sent/response stages
    upload: str  # queued async upload, XML, business key, no transformed stage
    fanout: str  # two destinations, each with a transformed stage
    other_settle: str  # a second settlement, for --against


async def _fill(url: str) -> tuple[str, str, str, str]:
    store = await MessageStore.open(url)
    try:
        now = datetime.now(UTC)
        settle = await _settlement(store, now - timedelta(minutes=50), RAW, TRANSFORMED)
        other = await _settlement(
            store, now - timedelta(minutes=40), {**RAW, "infno": "2208"}, TRANSFORMED
        )
        upload = new_id()
        await store.create_message(
            NewMessage(
                id=upload,
                channel="upload",
                source="http",
                received_at=now - timedelta(minutes=30),
                raw=Payload(
                    b'<Upload><Code type="drug">81234567890123456789</Code></Upload>', "text/xml"
                ),
                content_type="text/xml",
                deliveries=[NewDelivery("drug_trace", Delivery.ASYNC, Status.QUEUED)],
                correlation_key="RX-9",
                status=Status.QUEUED,
                business_keys={"rx_no": "RX-9"},
            )
        )
        await store.add_stages(
            upload,
            [
                StageRecord(
                    StageName.SENT,
                    Payload(
                        b'<Upload><Code type="drug">81234567890123456780</Code></Upload>',
                        "text/xml",
                    ),
                    None,
                    1,
                )
            ],
        )
        fanout = new_id()
        ids = await store.create_message(
            NewMessage(
                id=fanout,
                channel="results",
                source="mllp",
                received_at=now - timedelta(minutes=20),
                raw=Payload.from_json({"a": 1}),
                content_type="application/json",
                deliveries=[
                    NewDelivery("lis", Delivery.ASYNC, Status.QUEUED),
                    NewDelivery("pacs", Delivery.ASYNC, Status.QUEUED),
                ],
                status=Status.QUEUED,
            )
        )
        await store.add_stages(
            fanout,
            [
                StageRecord(StageName.TRANSFORMED, Payload.from_json({"a": 2}), ids["lis"], 1),
                StageRecord(StageName.TRANSFORMED, Payload.from_json({"a": 3}), ids["pacs"], 1),
            ],
        )
        return settle, upload, fanout, other
    finally:
        await store.close()


async def _settlement(store: MessageStore, received: datetime, raw: dict, transformed: dict) -> str:  # type: ignore[type-arg]
    message_id = new_id()
    ids = await store.create_message(
        NewMessage(
            id=message_id,
            channel="settle",
            source="http",
            received_at=received,
            raw=Payload.from_json(raw),
            content_type="application/json",
            deliveries=[NewDelivery("yibao", Delivery.SYNC, Status.RECEIVED)],
            correlation_key=ID_NUMBER,
            business_keys={"setl_id": "S1"},
        )
    )
    delivery = ids["yibao"]
    sent = Payload.from_json(
        transformed, headers={"Authorization": "Bearer s3cr3t-token", "X-Trace": "t1"}
    )
    await store.record_attempt(
        AttemptRecord(
            delivery,
            1,
            received,
            123.4,
            "transient",
            http_status=502,
            error="http_status: HTTP 502",
            verdict=BAD_GATEWAY,
        ),
        [
            StageRecord(StageName.TRANSFORMED, Payload.from_json(transformed), delivery, 1),
            StageRecord(StageName.SENT, sent, delivery, 1),
            StageRecord(StageName.RESPONSE_RAW, Payload(b"Bad Gateway", "text/plain"), delivery, 1),
        ],
        DeliveryUpdate(delivery, Status.FAILED, 1, verdict=BAD_GATEWAY),
        message_status=Status.FAILED,
        message_verdict=BAD_GATEWAY,
        message_id=message_id,
    )
    return message_id


@pytest.fixture(scope="module")
def filled_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, tuple[str, str, str, str]]:
    """Filled once per module (each store write is fsynced); every test gets a copy."""
    store_dir = tmp_path_factory.mktemp("template") / "var"
    ids = asyncio.run(_fill(f"sqlite:///{store_dir / 'hisbridge.db'}"))
    return store_dir, ids


@pytest.fixture
def stored(tmp_path: Path, filled_store: tuple[Path, tuple[str, str, str, str]]) -> Stored:
    template, (settle, upload, fanout, other) = filled_store
    shutil.copytree(template, tmp_path / "var")
    conf = tmp_path / "conf"
    conf.mkdir()
    db_url = f"sqlite:///{tmp_path / 'var' / 'hisbridge.db'}"
    (conf / "hisbridge.yaml").write_text(f"store:\n  url: {db_url}\n", encoding="utf-8")
    return Stored(conf, db_url, settle, upload, fanout, other)


def cli_context() -> CliContext:
    """A fresh plugin manager holding the engine's formats and fault rules only."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(formats_builtin, name="engine.formats.builtin")
    pm.register(attribution_builtin, name="engine.attribution.builtin")
    return CliContext(pm)


def run(stored: Stored, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["--conf", str(stored.conf), *args], obj=cli_context(), catch_exceptions=False
    )


def audit_rows(stored: Stored) -> list[tuple[str, str, str, str]]:
    engine = sa.create_engine(stored.db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    payload_reads.c.who,
                    payload_reads.c.message_id,
                    payload_reads.c.action,
                    payload_reads.c.remote,
                ).order_by(payload_reads.c.id)
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]
    finally:
        engine.dispose()


# --- messages -----------------------------------------------------------------------------


def test_messages_lists_newest_first_with_masked_keys(stored: Stored) -> None:
    result = run(stored, "messages")
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "id",
        "received",
        "channel",
        "status",
        "party",
        "rule",
        "correlation",
        "key",
    ]
    order = [line.split()[0] for line in lines[1:]]
    assert order == [stored.fanout, stored.upload, stored.other_settle, stored.settle]
    assert ID_NUMBER not in result.stdout
    assert "110101********1234" in result.stdout
    assert "core.http.server_error" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--channel", "settle"], {"settle", "other_settle"}),
        (["--status", "queued"], {"upload", "fanout"}),
        (["--party", "third_party"], {"settle", "other_settle"}),
        (["--key", "rx_no=RX-9"], {"upload"}),
        (["--since", "25m"], {"fanout"}),
        (["--until", "35m"], {"settle", "other_settle"}),
        (["--limit", "1"], {"fanout"}),
    ],
)
def test_messages_filters(stored: Stored, args: list[str], expected: set[str]) -> None:
    result = run(stored, "messages", "--json", *args)
    assert result.exit_code == 0, result.stdout
    names = {getattr(stored, name): name for name in ("settle", "upload", "fanout", "other_settle")}
    listed = [json.loads(line) for line in result.stdout.splitlines()]
    assert {names[row["id"]] for row in listed} == expected


def test_messages_json_is_masked(stored: Stored) -> None:
    result = run(stored, "messages", "--json", "--channel", "settle")
    assert ID_NUMBER not in result.stdout
    row = json.loads(result.stdout.splitlines()[0])
    assert row["correlation_key"] == "110101********1234"
    assert row["party"] == "third_party"


def test_messages_rejects_bad_arguments(stored: Stored) -> None:
    assert run(stored, "messages", "--since", "yesterday").exit_code == 2
    assert run(stored, "messages", "--key", "novalue").exit_code == 2
    assert run(stored, "messages", "--party", "hospital").exit_code == 2


def test_messages_with_iso_times(stored: Stored) -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    result = run(stored, "messages", "--since", future)
    assert result.stdout.strip() == "no messages match"


# --- show ---------------------------------------------------------------------------------


def test_show_explains_attempts_and_renders_stages(stored: Stored) -> None:
    result = run(stored, "show", stored.settle, "--as", "dr.audit")
    assert result.exit_code == 0, result.stdout
    out = result.stdout
    assert f"message {stored.settle}  channel settle" in out
    assert "verdict third_party (core.http.server_error): the destination failed (HTTP 502)" in out
    assert "remedy: the other side's service is failing" in out
    assert "delivery yibao (sync): failed, 1 attempt(s)" in out
    assert (
        "#1" in out and "123.4 ms  transient  HTTP 502  third_party (core.http.server_error)" in out
    )
    assert "── raw · application/json · json ·" in out
    assert "── sent → yibao attempt 1 · application/json · json ·" in out
    assert '"psn_name": "测试甲"' in out  # payloads are shown as they are (audited)
    assert "Authorization: B" in out and "s3cr3t" not in out
    assert "X-Trace: t1" in out
    assert "── response_raw → yibao attempt 1 · text/plain · text · 11 bytes ──\nBad Gateway" in out
    assert "110101********1234" in out.split("── raw")[0]  # the correlation key is masked
    assert audit_rows(stored) == [("dr.audit", stored.settle, "show", "cli")]


def test_show_one_stage_masked(stored: Stored) -> None:
    result = run(stored, "show", stored.settle, "--stage", "transformed", "--mask")
    assert result.exit_code == 0, result.stdout
    assert "── transformed" in result.stdout and "── raw" not in result.stdout
    assert "测试甲" not in result.stdout and ID_NUMBER not in result.stdout
    assert '"amt": 12.5' in result.stdout


def test_show_raw_bytes_writes_exact_bytes_to_stdout(stored: Stored) -> None:
    result = CliRunner().invoke(
        main,
        ["--conf", str(stored.conf), "show", stored.upload, "--stage", "raw", "--raw-bytes"],
        obj=cli_context(),
    )
    assert result.exit_code == 0, result.stdout
    assert result.stdout_bytes == b'<Upload><Code type="drug">81234567890123456789</Code></Upload>'
    assert "── raw · text/xml · xml" in result.stderr


def test_show_unknown_message_fails_without_auditing(stored: Stored) -> None:
    result = run(stored, "show", "01NOTAMESSAGE0000000000000")
    assert result.exit_code == 1
    assert "no message with id 01NOTAMESSAGE0000000000000" in result.stderr
    assert audit_rows(stored) == []


# --- diff ---------------------------------------------------------------------------------


def test_diff_defaults_to_raw_vs_transformed(stored: Stored) -> None:
    result = run(stored, "diff", stored.settle, "--as", "eng")
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == f"--- {stored.settle} raw (json)"
    assert lines[1] == f"+++ {stored.settle} transformed → yibao attempt 1 (json)"
    assert lines[2].strip() == "json: aligned by path"
    assert '~ $.input.data.amt: "12.50" → 12.5' in lines
    assert '+ $.input.data.insutype: "310"' in lines
    assert lines[-1] == "1 changed, 0 removed, 1 added"
    assert audit_rows(stored) == [("eng", stored.settle, "diff", "cli")]


def test_diff_falls_back_to_sent_without_a_transformed_stage(stored: Stored) -> None:
    result = run(stored, "diff", stored.upload)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1] == f"+++ {stored.upload} sent attempt 1 (xml)"
    assert "~ /Upload/Code: 81234567890123456789 → 81234567890123456780" in result.stdout


def test_diff_of_a_missing_stage_names_the_stored_ones(stored: Stored) -> None:
    result = run(stored, "diff", stored.fanout, "raw", "sent")
    assert result.exit_code == 1
    assert f"message {stored.fanout} has no sent stage (stored: raw, transformed)" in result.stderr


def test_diff_two_named_stages_across_formats(stored: Stored) -> None:
    result = run(stored, "diff", stored.settle, "sent", "response_raw")
    assert result.exit_code == 0, result.stdout
    assert "formats differ (json vs text): aligned by value" in result.stdout
    assert "→ line 1" in result.stdout


def test_diff_against_another_message_and_masking(stored: Stored) -> None:
    result = run(stored, "diff", stored.settle, "--against", stored.other_settle, "--mask")
    assert result.exit_code == 0, result.stdout
    assert '~ $.infno: "2207" → "2208"' in result.stdout
    same_stage = run(stored, "diff", stored.settle, "transformed", "--against", stored.other_settle)
    assert same_stage.stdout.splitlines()[-1] == "no differences"
    who = {row[1] for row in audit_rows(stored)}
    assert who == {stored.settle, stored.other_settle}


def test_diff_masks_named_fields_and_id_numbers() -> None:
    from engine.cli.explain import _Explainer, _masked
    from engine.formats.diff import DiffEntry
    from engine.formats.registry import FormatRegistry

    explainer = _Explainer(FormatRegistry({}), ["psn_name"], {}, mask=True)
    named = _masked(DiffEntry("$.input.psn_name", "changed", '"测试甲"', '"测试乙"'), explainer)
    assert (named.old, named.new) == ('"****', '"****')
    numbered = _masked(DiffEntry("$.certno", "added", None, ID_NUMBER), explainer)
    assert numbered.new == "110101********1234"


def test_diff_needs_a_destination_when_stages_are_ambiguous(stored: Stored) -> None:
    result = run(stored, "diff", stored.fanout)
    assert result.exit_code == 2
    assert "transformed stage for lis, pacs: pick one with --destination" in result.stderr
    chosen = run(stored, "diff", stored.fanout, "--destination", "pacs")
    assert "~ $.a: 1 → 3" in chosen.stdout


def test_diff_usage_errors(stored: Stored) -> None:
    assert run(stored, "diff", stored.settle, "raw").exit_code == 2
    assert run(stored, "diff", stored.settle, "raw", "sent", "--format", "nope").exit_code == 2
    forced = run(stored, "diff", stored.settle, "raw", "response_raw", "--format", "text")
    assert "text: aligned by line content" in forced.stdout


# --- stats --------------------------------------------------------------------------------


def test_stats_volume_and_failures_by_party(stored: Stored) -> None:
    result = run(stored, "stats", "--json")
    assert result.exit_code == 0, result.stdout
    figures = json.loads(result.stdout)
    received = {}
    for row in figures["volume"]:
        received[row["channel"]] = received.get(row["channel"], 0) + row["received"]
    assert received == {"settle": 2, "upload": 1, "results": 1}
    assert figures["failures"] == [{"channel": "settle", "party": "third_party", "count": 2}]
    table = run(stored, "stats", "--since", "1h")
    assert ["settle", "third_party", "2"] in [line.split() for line in table.stdout.splitlines()]
