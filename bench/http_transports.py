"""Which HTTP transport should carry adapter traffic? Measure, don't guess.

Starts the demo upstream in a subprocess (so server and client do not share a core's
event loop), then POSTs a small JSON body in a closed loop at concurrency 1 and 16 with:

- httpx with its default transport (httpcore),
- httpx with pool limits tuned for a busy destination,
- httpx with the `httpx_aiohttp` transport (httpx API, aiohttp underneath),
- httpx with the engine's chosen transport (`engine.transports.http.default_transport`),
- the same, with the request built as `httpx.Request` instead of through the client,
- a raw aiohttp ClientSession, as a reference for what the wire allows.

Usage: python bench/http_transports.py [--requests 3000] [--rounds 5] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from engine.transports.http import default_transport

BODY = b'{"infno": "2207", "input": {"data": {"mdtrt_id": "M0001", "setl_id": "S0001"}}}'
HEADERS = {"Content-Type": "application/json"}
Send = Callable[[str], Awaitable[bytes]]


@dataclass
class Result:
    name: str
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds * 1000 / self.requests

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def closed_loop(send: Send, url: str, concurrency: int, total: int) -> tuple[float, list[float], float]:
    """Wall seconds, latencies, and this process's CPU seconds (the client's cost: the
    server runs in another process)."""
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await send(url)
            latencies.append(time.perf_counter() - started)

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, time.process_time() - cpu_started


def httpx_sender(client: httpx.AsyncClient) -> Send:
    async def send(url: str) -> bytes:
        response = await client.post(url, content=BODY, headers=HEADERS)
        response.raise_for_status()
        return response.content

    return send


def prebuilt_sender(client: httpx.AsyncClient) -> Send:
    """As the engine's http_json adapter sends: no merge with client defaults per call."""
    headers = httpx.Headers(HEADERS)
    timeout = httpx.Timeout(10).as_dict()

    async def send(url: str) -> bytes:
        request = httpx.Request("POST", url, content=BODY, headers=headers, extensions={"timeout": timeout})
        response = await client.send(request)
        response.raise_for_status()
        return response.content

    return send


def aiohttp_sender(session: aiohttp.ClientSession) -> Send:
    async def send(url: str) -> bytes:
        async with session.post(url, data=BODY, headers=HEADERS) as response:
            response.raise_for_status()
            return await response.read()

    return send


TUNED = httpx.Limits(max_connections=64, max_keepalive_connections=64, keepalive_expiry=30)


async def candidates(stack: AsyncExitStack) -> dict[str, Send]:
    async def client(**kw: object) -> httpx.AsyncClient:
        return await stack.enter_async_context(httpx.AsyncClient(timeout=10, **kw))  # type: ignore[arg-type]

    session = await stack.enter_async_context(aiohttp.ClientSession())
    engine_client = await client(transport=default_transport(True))
    return {
        "httpx default transport": httpx_sender(await client()),
        "httpx tuned pool limits": httpx_sender(await client(limits=TUNED)),
        "httpx + httpx_aiohttp transport": httpx_sender(await client(transport=AiohttpTransport())),
        "httpx + engine default_transport": httpx_sender(engine_client),
        "  same, httpx.Request built directly": prebuilt_sender(engine_client),
        "raw aiohttp (reference)": aiohttp_sender(session),
    }


async def run(url: str, total: int, rounds: int) -> list[Result]:
    """Candidates take turns in short rounds, in rotating order, so that load from
    elsewhere on the machine falls on all of them alike."""
    results: list[Result] = []
    async with AsyncExitStack() as stack:
        senders = await candidates(stack)
        for send in senders.values():
            await closed_loop(send, url, 16, 200)  # open and warm every pool
        for concurrency in (1, 16):
            by_name = {name: Result(name, concurrency, 0, 0.0, []) for name in senders}
            names = list(senders)
            for round_number in range(rounds):
                shift = round_number % len(names)
                for name in names[shift:] + names[:shift]:
                    seconds, latencies, cpu = await closed_loop(senders[name], url, concurrency, total // rounds)
                    by_name[name].requests += len(latencies)
                    by_name[name].seconds += seconds
                    by_name[name].cpu_seconds += cpu
                    by_name[name].latencies += latencies
            results.extend(by_name.values())
    return results


def print_table(results: list[Result]) -> None:
    print(f"{'transport':36} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}")
    for r in results:
        print(f"{r.name:36} {r.concurrency:>4} {r.rate:>8.0f} {r.percentile(0.5):>8.2f} {r.percentile(0.99):>8.2f}"
              f" {r.cpu_ms_per_request:>11.3f}")
    for concurrency in (1, 16):
        candidates = [r for r in results if r.concurrency == concurrency and "reference" not in r.name]
        best = max(candidates, key=lambda r: r.rate)
        print(f"fastest httpx-API transport at concurrency {concurrency}: {best.name} ({best.rate:.0f} req/s)")
        cheapest = min(candidates, key=lambda r: r.cpu_seconds / r.requests)
        print(f"cheapest in CPU at concurrency {concurrency}: {cheapest.name} "
              f"({cheapest.cpu_ms_per_request:.3f} ms per request)")
    print(f"median p50 across all: {statistics.median(r.percentile(0.5) for r in results):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--uvloop", action="store_true", help="run the client on uvloop")
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "engine.demo.upstream", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip() + "/bench"
        if args.uvloop:
            import uvloop

            results = uvloop.run(run(url, args.requests, args.rounds))
        else:
            results = asyncio.run(run(url, args.requests, args.rounds))
        print_table(results)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
