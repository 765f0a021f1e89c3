"""Sync HTTP calls through the engine (store on) against the same calls straight to the upstream.

Three processes, as in production: the upstream simulator, the daemon (`hisbridge run` on a
fresh SQLite store) and this load generator, which uses one aiohttp client for both paths so
the difference is the engine. Prints requests/s and p50/p99 at 1 and 16 concurrent callers
for a destination declared safe to repeat (written after the call, nobody waits for the disk)
and one that is not (committed before the request leaves), then the answer time while the
breaker is open (suspended by the operator).

Beside each engine row it prints the daemon's CPU time per request (user + system, from
/proc): three processes share two cores here, so that figure, not req/s, is what compares
across runs on a machine others are loading. The load average is printed with the table.

    python bench/engine_throughput.py [--requests 3000] [--profile DAEMON.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

TOKEN = "bench-token"


def cpu_seconds(stat: Path) -> float:
    """User + system CPU seconds of a live process or thread (Linux /proc)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def daemon_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of the whole daemon and of its main thread (the event loop); the rest is
    the store writer and log threads, which compete with the loop for the GIL."""
    return cpu_seconds(Path(f"/proc/{pid}/stat")), cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def load(url: str, *, requests: int, concurrency: int, headers: dict[str, str]) -> dict[str, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = iter(range(requests))
    body = b'{"settlement_id": "BENCH", "amount": "12.50", "items": [{"code": "A1", "qty": 1}]}'
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def caller() -> None:
            for _ in remaining:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "rps": requests / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "statuses": statuses,  # type: ignore[dict-item]
    }


async def measured(daemon_pid: int, url: str, *, requests: int, concurrency: int,
                   headers: dict[str, str]) -> dict[str, float]:
    """`load`, plus the daemon's CPU milliseconds per request over the run."""
    total_before, loop_before = daemon_cpu(daemon_pid)
    figures = await load(url, requests=requests, concurrency=concurrency, headers=headers)
    total_after, loop_after = daemon_cpu(daemon_pid)
    figures["cpu_ms"] = (total_after - total_before) * 1000 / requests
    figures["loop_cpu_ms"] = (loop_after - loop_before) * 1000 / requests
    return figures


def start_upstream() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.demo.upstream", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def write_conf(root: Path, upstream: str, port: int) -> Path:
    conf = root / "conf"
    (conf / "channels").mkdir(parents=True)
    (conf / "hisbridge.yaml").write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{root / 'bench.db'}"},
        "api": {"port": port, "tokens": [{"name": "bench", "role": "operator", "token": {"$env": "BENCH_TOKEN"}}]},
        "logging": {"level": "warning"},
    }))
    for channel, idempotent in (("query", True), ("settle", False)):
        (conf / "channels" / f"{channel}.yaml").write_text(yaml.safe_dump({
            "destinations": [{"name": f"{channel}_centre", "adapter": "http_json", "delivery": "sync",
                              "breaker": {"key": "centre"},
                              "config": {"url": f"{upstream}/{channel}", "timeout": 10,
                                         "idempotent": idempotent}}],
        }))
    return conf


async def wait_healthy(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("daemon did not start")


async def main(requests: int, port: int, profile: str | None) -> None:
    upstream, upstream_url = start_upstream()
    with tempfile.TemporaryDirectory() as tmp:
        conf = write_conf(Path(tmp), upstream_url, port)
        daemon = subprocess.Popen(
            [sys.executable, *(("-m", "cProfile", "-o", profile) if profile else ()),
             "-m", "engine.cli", "--conf", str(conf), "run"],
            env={**os.environ, "BENCH_TOKEN": TOKEN}, stdout=subprocess.DEVNULL,
        )
        engine_url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        try:
            await wait_healthy(engine_url)
            rows = []
            for concurrency in (1, 16):
                for name, url, headers in (
                    ("direct to upstream", f"{upstream_url}/settle", {"Content-Type": "application/json"}),
                    ("engine, repeatable", f"{engine_url}/api/v1/channels/query", auth),
                    ("engine, not repeatable", f"{engine_url}/api/v1/channels/settle", auth),
                ):
                    await load(url, requests=min(300, requests), concurrency=concurrency, headers=headers)  # warm-up
                    rows.append((name, concurrency, await measured(daemon.pid, url, requests=requests,
                                                                   concurrency=concurrency, headers=headers)))
            async with aiohttp.ClientSession() as session:
                await session.post(f"{engine_url}/api/v1/breakers/centre/suspend",
                                   json={"reason": "benchmark"}, headers=auth)
            for concurrency in (1, 16):
                rows.append(("breaker open (503)", concurrency, await measured(
                    daemon.pid, f"{engine_url}/api/v1/channels/settle", requests=requests,
                    concurrency=concurrency, headers=auth)))
        finally:
            daemon.terminate()
            daemon.wait(30)
            upstream.terminate()
            upstream.wait(10)
    load_average = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average after the run: {load_average}")
    print(f"{'path':<24}{'callers':>8}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'daemon CPU ms/req':>19}{'(event loop)':>14}  statuses")
    for name, concurrency, figures in rows:
        print(f"{name:<24}{concurrency:>8}{figures['rps']:>8.0f}{figures['p50']:>8.2f}{figures['p99']:>8.2f}"
              f"{figures['cpu_ms']:>19.3f}{figures['loop_cpu_ms']:>14.3f}  {figures['statuses']}")
    by_key = {(name, c): f for name, c, f in rows}
    for concurrency in (1, 16):
        for path in ("engine, repeatable", "engine, not repeatable"):
            added = by_key[(path, concurrency)]["p50"] - by_key[("direct to upstream", concurrency)]["p50"]
            print(f"{path}: adds {added:.2f} ms at p50 with {concurrency} caller(s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--profile", metavar="FILE", help="run the daemon under cProfile, writing FILE")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.port, args.profile))
