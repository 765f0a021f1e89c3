"""Message reads over a real socket: status without payloads, audited stages, masked
listings, replay."""

from __future__ import annotations

import base64

import sqlalchemy as sa
from api_harness import Api

from engine.store.schema import payload_reads

PATIENT = {"setl_id": "S100", "psn_name": "张三丰", "mdtrt_cert_no": "110101199003071234", "amount": 30}


async def post_keyed(api: Api) -> str:
    response = await api.post("keyed", PATIENT)
    assert response.status_code == 200
    return response.headers["x-hisbridge-message-id"]


def audit_rows(api: Api) -> list[dict[str, object]]:
    engine = sa.create_engine(api.engine.config.store.url)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(sa.select(payload_reads))]
    finally:
        engine.dispose()


async def test_status_has_no_payloads(api: Api) -> None:
    message_id = await post_keyed(api)

    response = await api.get(f"/api/v1/messages/{message_id}", token=api.his_token)

    assert response.status_code == 200
    assert "1990030712" not in response.text
    assert "张三丰" not in response.text
    body = response.json()
    assert body["status"] == "replied"
    assert body["deliveries"][0]["attempt_rows"][0]["outcome"] == "ok"
    assert "stages" not in body


async def test_unknown_message_is_404(api: Api) -> None:
    response = await api.get("/api/v1/messages/01HZZZZZZZZZZZZZZZZZZZZZZZ")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_message"


async def test_stages_are_operator_only_and_every_read_is_audited(api: Api) -> None:
    message_id = await post_keyed(api)

    refused = await api.get(f"/api/v1/messages/{message_id}/stages", token=api.his_token)
    assert refused.status_code == 403
    assert audit_rows(api) == []

    response = await api.get(f"/api/v1/messages/{message_id}/stages")
    assert response.status_code == 200
    stages = {stage["name"]: stage for stage in response.json()["stages"]}
    assert stages["raw"]["encoding"] == "utf-8"
    assert "张三丰" in stages["raw"]["body"]
    assert "response_raw" in stages

    one = await api.get(f"/api/v1/messages/{message_id}/stages/raw")
    assert one.status_code == 200
    assert one.json()["body"] == stages["raw"]["body"]

    rows = audit_rows(api)
    assert [(r["who"], r["message_id"], r["action"], r["remote"]) for r in rows] == [
        ("alice", message_id, "api", "127.0.0.1"),
        ("alice", message_id, "api", "127.0.0.1"),
    ]


async def test_non_text_stage_is_base64(api: Api) -> None:
    body = b"\xff\xfe binary \x00"
    response = await api.post("echo", body, headers={"Content-Type": "application/octet-stream"})
    message_id = response.headers["x-hisbridge-message-id"]

    raw = (await api.get(f"/api/v1/messages/{message_id}/stages/raw")).json()

    assert raw["encoding"] == "base64"
    assert base64.b64decode(raw["body"]) == body


async def test_missing_stage_and_unknown_stage_kind_are_404(api: Api) -> None:
    message_id = await post_keyed(api)

    unknown_kind = await api.get(f"/api/v1/messages/{message_id}/stages/everything")
    absent = await api.get(f"/api/v1/messages/{message_id}/stages/error")

    assert unknown_kind.status_code == 404
    assert "raw" in unknown_kind.json()["error"]["reason"]
    assert absent.status_code == 404
    assert absent.json()["error"]["code"] == "no_stage"
    assert audit_rows(api) == []


async def test_listing_filters_and_masks_keys(api: Api) -> None:
    message_id = await post_keyed(api)
    await api.post("echo", {"other": True})

    by_key = await api.get("/api/v1/messages", params={"key": "setl_id:S100"})
    by_channel = await api.get("/api/v1/messages", params={"channel": "echo"})

    assert by_key.status_code == 200
    listed = by_key.json()["messages"]
    assert [m["id"] for m in listed] == [message_id]
    assert listed[0]["business_keys"]["setl_id"] == "S100"
    assert listed[0]["business_keys"]["psn_name"] == "张**"
    assert "张三丰" not in by_key.text
    assert [m["channel"] for m in by_channel.json()["messages"]] == ["echo"]


async def test_listing_is_operator_only_and_rejects_bad_filters(api: Api) -> None:
    forbidden = await api.get("/api/v1/messages", token=api.his_token)
    bad_key = await api.get("/api/v1/messages", params={"key": "no-colon"})
    bad_status = await api.get("/api/v1/messages", params={"status": "lost"})
    bad_limit = await api.get("/api/v1/messages", params={"limit": "100000"})

    assert forbidden.status_code == 403
    for response in (bad_key, bad_status, bad_limit):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "bad_query"


async def test_replay_runs_the_raw_bytes_again_as_a_linked_message(api: Api) -> None:
    message_id = await post_keyed(api)

    response = await api.op_post(f"/api/v1/messages/{message_id}/replay")

    assert response.status_code == 200
    body = response.json()
    assert body["replay_of"] == message_id
    assert body["status"] == "replied"
    assert body["message_id"] != message_id
    replayed = await api.message(body["message_id"])
    assert replayed["parent_id"] == message_id


async def test_replay_is_operator_only_and_404_for_unknown(api: Api) -> None:
    message_id = await post_keyed(api)

    forbidden = await api.op_post(f"/api/v1/messages/{message_id}/replay", token=api.his_token)
    unknown = await api.op_post("/api/v1/messages/01HZZZZZZZZZZZZZZZZZZZZZZZ/replay")

    assert forbidden.status_code == 403
    assert unknown.status_code == 404
