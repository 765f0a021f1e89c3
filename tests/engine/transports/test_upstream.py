"""The demo upstream is a real server: every mode is checked over a real socket."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from engine.demo.upstream import Upstream


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


async def test_normal_mode_echoes_and_records(client: httpx.AsyncClient, upstream: Upstream) -> None:
    response = await client.post(f"{upstream.url}/api/settle", json={"setl_id": "S1"})
    assert response.status_code == 200
    assert response.json() == {"ok": True, "seq": 1, "echo": {"setl_id": "S1"}}
    (received,) = upstream.received
    assert (received.method, received.path, received.status) == ("POST", "/api/settle", 200)
    assert upstream.accepted_bodies() == [b'{"setl_id":"S1"}']


async def test_fixed_reply(client: httpx.AsyncClient, upstream: Upstream) -> None:
    upstream.set_mode("normal", reply={"infcode": 0})
    assert (await client.post(upstream.url, content=b"x")).json() == {"infcode": 0}


async def test_fail_and_reject_modes(client: httpx.AsyncClient, upstream: Upstream) -> None:
    upstream.set_mode("fail")
    failed = await client.post(upstream.url, content=b"1")
    assert failed.status_code == 503
    upstream.set_mode("reject")
    rejected = await client.post(upstream.url, content=b"2")
    assert rejected.status_code == 400
    assert rejected.json()["code"] == "E400"
    assert upstream.count == 2
    assert upstream.accepted_bodies() == []


async def test_slow_mode_delays_the_answer(client: httpx.AsyncClient, upstream: Upstream) -> None:
    upstream.set_mode("slow", delay=5)
    with pytest.raises(httpx.ReadTimeout):
        await client.post(upstream.url, content=b"late", timeout=0.05)
    upstream.set_mode("slow", delay=0.01)
    assert (await client.post(upstream.url, content=b"ok")).status_code == 200


async def test_down_refuses_connections_and_comes_back_on_the_same_port(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    await client.post(upstream.url, content=b"before")
    url = upstream.url
    await upstream.stop()
    assert upstream.mode == "down"
    with pytest.raises(httpx.ConnectError):
        await client.post(url, content=b"lost")
    await upstream.start()
    assert upstream.url == url
    assert (await client.post(url, content=b"after")).status_code == 200
    assert upstream.accepted_bodies() == [b"before", b"after"]


async def test_stop_releases_requests_waiting_in_slow_mode(
    client: httpx.AsyncClient, upstream: Upstream
) -> None:
    upstream.set_mode("slow", delay=60)
    pending = asyncio.create_task(client.post(upstream.url, content=b"waiting"))
    while upstream.count == 0:
        await asyncio.sleep(0.005)
    await upstream.stop()
    try:
        await pending
    except httpx.HTTPError:
        pass  # answered or cut: either way the stop did not wait 60 s


async def test_http_controls(client: httpx.AsyncClient, upstream: Upstream) -> None:
    control = await client.post(f"{upstream.url}/_control", json={"mode": "fail"})
    assert control.json()["mode"] == "fail"
    assert (await client.post(upstream.url, content=b"a")).status_code == 503
    received = (await client.get(f"{upstream.url}/_received")).json()
    assert received["count"] == 1
    assert received["requests"][0]["body"] == "a"
    await client.post(f"{upstream.url}/_control", json={"mode": "normal", "reset": True})
    assert upstream.count == 0
    bad = await client.post(f"{upstream.url}/_control", json={"mode": "sideways"})
    assert bad.status_code == 400


async def test_http_down_for_restarts_itself(client: httpx.AsyncClient, upstream: Upstream) -> None:
    await client.post(f"{upstream.url}/_control", json={"mode": "down", "down_for": 0.05})
    while upstream.running:
        await asyncio.sleep(0.005)
    while not upstream.running:
        await asyncio.sleep(0.005)
    assert (await client.post(upstream.url, content=b"back")).status_code == 200


def test_set_mode_rejects_unknown_modes() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        Upstream().set_mode("down")


@pytest.mark.slow
async def test_runs_as_a_subprocess(client: httpx.AsyncClient) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.demo.upstream", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert (await client.post(url, json={"n": 1})).json()["echo"] == {"n": 1}
        assert (await client.get(f"{url}/_received")).json()["count"] == 1
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None
        process.stdout.close()
