"""POST /api/v1/channels/{channel} over a real socket: auth, limits, and every outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from api_harness import Api

HIS_TOKEN = Api.his_token
OPERATOR_TOKEN = Api.operator_token
MAX_BODY_BYTES = Api.max_body_bytes


async def test_missing_and_invalid_tokens_get_401_with_bearer_challenge(api: Api) -> None:
    missing = await api.client.post("/api/v1/channels/echo", json={"a": 1})
    invalid = await api.post("echo", {"a": 1}, token="not-a-token")

    for response in (missing, invalid):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "unauthorized"
    assert "missing bearer token" in missing.json()["error"]["reason"]
    assert api.upstream.count == 0


async def test_his_token_on_an_operator_route_gets_403_naming_the_role(api: Api) -> None:
    response = await api.get("/api/v1/breakers", token=HIS_TOKEN)

    assert response.status_code == 403
    assert "needs role operator" in response.json()["error"]["reason"]


async def test_sync_reply_is_passed_through_with_the_message_id(api: Api) -> None:
    response = await api.post("settle", {"setl_id": "S1", "amount": 12})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["echo"] == {"setl_id": "S1", "amount": 12}
    message_id = response.headers["x-hisbridge-message-id"]
    status = await api.message(message_id, token=HIS_TOKEN)
    assert status["status"] == "replied"
    assert status["deliveries"][0]["destination"] == "centre"
    assert status["deliveries"][0]["attempts"] == 1


async def test_operator_token_may_post_too(api: Api) -> None:
    response = await api.post("echo", {"a": 1}, token=OPERATOR_TOKEN)

    assert response.status_code == 200


async def test_async_channel_answers_202_and_the_outbox_delivers(api: Api) -> None:
    response = await api.post("trace", {"code": "8" * 20})

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    status = await api.delivered(body["message_id"], token=HIS_TOKEN)
    assert status["status"] == "sent"


async def test_unknown_channel_is_404_listing_the_known_ones(api: Api) -> None:
    response = await api.post("nosuch", {"a": 1})

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_channel"
    assert "nosuch" in error["reason"]
    assert error["known_channels"] == ["echo", "keyed", "settle", "trace"]


async def test_declared_body_over_the_limit_is_413_naming_it(api: Api) -> None:
    response = await api.post("echo", b"{" + b" " * MAX_BODY_BYTES + b"}")

    assert response.status_code == 413
    assert str(MAX_BODY_BYTES) in response.json()["error"]["reason"]
    assert "api.max_body_bytes" in response.json()["error"]["reason"]


async def test_chunked_body_over_the_limit_is_413(api: Api) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * (MAX_BODY_BYTES // 4)

    response = await api.client.post(
        "/api/v1/channels/echo", content=chunks(), headers=api.auth(HIS_TOKEN)
    )

    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_malformed_json_is_400_and_stored_with_party_his(api: Api) -> None:
    response = await api.post("settle", b'{"setl_id": "S1",', headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["party"] == "his"
    assert error["rule_id"]
    assert api.upstream.count == 0
    stored = await api.message(error["message_id"], token=HIS_TOKEN)
    assert stored["status"] == "failed"
    assert stored["party"] == "his"
    assert stored["rule_id"] == error["rule_id"]


async def test_invalid_field_is_422_naming_the_field(api: Api) -> None:
    response = await api.post("keyed", {"setl_id": "S9", "amount": -5})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "amount"
    assert error["party"] == "his"
    assert "negative" in error["reason"]


async def test_third_party_rejection_is_502(api: Api) -> None:
    api.upstream.set_mode("reject")

    response = await api.post("settle", {"setl_id": "S2"})

    assert response.status_code == 502
    error = response.json()["error"]
    assert error["party"] == "third_party"
    assert error["destination"] == "centre"
    assert error["message_id"] == response.headers["x-hisbridge-message-id"]


async def test_upstream_timeout_is_504(api: Api) -> None:
    api.upstream.set_mode("slow", delay=5)

    response = await api.post("settle", {"setl_id": "S3"})

    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "destination_timeout"
    assert error["condition"] == "timeout"
    assert error["party"] in ("network", "third_party")
    assert error["destination"] == "centre"
    assert error["message_id"]


async def test_open_breaker_answers_503_without_calling_the_destination(api: Api) -> None:
    api.upstream.set_mode("fail")
    for _ in range(2):
        assert (await api.post("settle", {"setl_id": "S4"})).status_code == 502
    calls_before = api.upstream.count

    response = await api.post("settle", {"setl_id": "S4"})

    assert response.status_code == 503
    assert api.upstream.count == calls_before
    error = response.json()["error"]
    assert error["code"] == "destination_unavailable"
    assert error["destination"] == "centre"
    assert error["state"] == "open"
    assert error["since"]
    assert error["reason"]
    assert error["message_id"] == response.headers["x-hisbridge-message-id"]
    assert 0 < int(response.headers["retry-after"]) <= 60
    stored = await api.message(error["message_id"])
    assert stored["status"] == "short_circuited"


async def test_engine_fault_is_500_with_the_rule_and_no_traceback(api: Api) -> None:
    response = await api.post("keyed", {"setl_id": "S5", "explode": True})

    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "engine_error"
    assert error["party"] == "engine"
    assert error["rule_id"]
    assert "ZeroDivisionError" in error["reason"]
    assert "Traceback" not in response.text
    assert error["message_id"] == response.headers["x-hisbridge-message-id"]


async def test_plugin_routes_are_mounted_with_the_same_auth(api: Api) -> None:
    allowed = await api.get("/api/v1/test-plugin/whoami", token=HIS_TOKEN)
    refused = await api.get("/api/v1/test-plugin/whoami", token=None)

    assert allowed.status_code == 200
    assert allowed.json() == {"caller": "cashier"}
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"


async def test_unknown_route_is_a_json_404_even_beside_plugin_routes(api: Api) -> None:
    for path in ("/nothing-here", "/api/v1/nothing-here"):
        response = await api.client.get(path)

        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


async def test_wrong_method_is_a_json_405_even_beside_plugin_routes(api: Api) -> None:
    response = await api.get("/api/v1/channels/echo", token=HIS_TOKEN)

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_concurrent_callers_each_get_their_own_reply(api: Api) -> None:
    responses = await asyncio.gather(*(api.post("echo", {"n": n}) for n in range(32)))

    assert [r.status_code for r in responses] == [200] * 32
    assert len({r.headers["x-hisbridge-message-id"] for r in responses}) == 32
