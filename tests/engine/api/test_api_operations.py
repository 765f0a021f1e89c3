"""Breakers over the API, and the probes: /healthz, /readyz, /metrics."""

from __future__ import annotations

from api_harness import Api
from prometheus_client.parser import text_string_to_metric_families


async def test_breakers_are_listed_for_operators(api: Api) -> None:
    response = await api.get("/api/v1/breakers")

    assert response.status_code == 200
    breakers = {b["name"]: b for b in response.json()["breakers"]}
    assert set(breakers) == {"centre", "echo_box", "keyed_box", "trace_box"}
    assert breakers["centre"]["state"] == "closed"


async def test_suspend_needs_a_reason(api: Api) -> None:
    for request in ({}, {"json": {}}, {"json": {"reason": "  "}}, {"content": b"not json"}):
        response = await api.op_post("/api/v1/breakers/echo_box/suspend", **request)
        assert response.status_code == 400
        assert "reason" in response.json()["error"]["reason"]
    assert api.engine.breakers.get("echo_box").state == "closed"


async def test_suspend_and_resume_over_the_api(api: Api) -> None:
    suspended = await api.op_post("/api/v1/breakers/echo_box/suspend", json={"reason": "vendor maintenance"})

    assert suspended.status_code == 200
    assert suspended.json()["state"] == "suspended"
    assert suspended.json()["suspended_by"] == "alice"
    assert await api.engine.store.suspensions() != {}

    refused = await api.post("echo", {"a": 1})
    assert refused.status_code == 503
    error = refused.json()["error"]
    assert (error["code"], error["state"], error["destination"]) == ("destination_unavailable", "suspended", "echo_box")
    assert "vendor maintenance" in error["reason"]
    assert int(refused.headers["retry-after"]) > 0

    resumed = await api.op_post("/api/v1/breakers/echo_box/resume")
    assert resumed.status_code == 200
    assert resumed.json()["state"] == "closed"
    assert await api.engine.store.suspensions() == {}
    assert (await api.post("echo", {"a": 1})).status_code == 200


async def test_breaker_routes_refuse_his_tokens_and_unknown_names(api: Api) -> None:
    forbidden = await api.op_post("/api/v1/breakers/echo_box/suspend", token=api.his_token,
                                  json={"reason": "x"})
    unknown = await api.op_post("/api/v1/breakers/nosuch/resume")

    assert forbidden.status_code == 403
    assert unknown.status_code == 404
    assert "echo_box" in unknown.json()["error"]["reason"]


async def test_healthz_and_readyz_need_no_token(api: Api) -> None:
    health = await api.get("/healthz", token=None)
    ready = await api.get("/readyz", token=None)

    assert health.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["channels"] == ["echo", "keyed", "settle", "trace"]


async def test_readyz_is_503_with_reasons_when_channels_are_missing(api: Api) -> None:
    built = api.engine.channels
    api.engine.channels = {name: channel for name, channel in built.items() if name != "trace"}
    try:
        response = await api.get("/readyz", token=None)
    finally:
        api.engine.channels = built

    assert response.status_code == 503
    assert response.json()["reasons"] == ["channels not built: trace"]


async def test_metrics_expose_per_channel_series_without_a_token(api: Api) -> None:
    await api.post("echo", {"a": 1})
    await api.post("trace", {"a": 1})

    response = await api.get("/metrics", token=None)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("hisbridge_received_total", (("channel", "echo"),))] == 1
    assert samples[("hisbridge_received_total", (("channel", "trace"),))] == 1
    assert samples[("hisbridge_deliveries_total",
                    (("channel", "echo"), ("destination", "echo_box"), ("status", "replied")))] == 1
    assert samples[("hisbridge_breaker_state", (("breaker", "centre"),))] == 0
