"""The async path under a burst: how fast HIS gets its 202s, how fast the outbox issues.

Three processes, as in production: the platform simulator, the daemon (`hisbridge run` on a
fresh SQLite store, one async e_invoice channel) and this load generator. Prints the accept
rate (HIS-facing: 202s per second over the burst) and the drain rate (platform-facing:
invoices issued per second from the first post until the simulator holds all of them),
and checks that every busNo was issued exactly once. With `--outage` the platform is down
during the burst and started afterwards, so both rates are measured alone.

    python -m plugins.e_invoice.benchmark [--count 5000] [--concurrency 32] [--outage]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

TOKEN = "bench-his-token"
APPID, KEY = "TESTAPPID0001", "testkey123"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def invoice(number: int) -> dict[str, Any]:
    return {"method": "outpatient", "data": {
        "busNo": f"BENCH{number:07d}", "payer": "压测患者", "busDateTime": "20261122094000123", "placeCode": "KPD001",
        "payee": "压测收费员", "author": "压测收费员", "totalAmt": "25.50",
        "payChannelDetail": [{"payChannelCode": "02", "payChannelValue": "25.50"}],
        "chargeDetail": [{"sortNo": 1, "chargeCode": "YLMZ03", "chargeName": "西药费", "std": "25.50", "number": 1,
                          "amt": "25.50"}],
    }}


def write_conf(root: Path, api_port: int, platform_url: str) -> Path:
    conf = root / "conf"
    (conf / "channels").mkdir(parents=True)
    daemon = {
        "store": {"url": f"sqlite:///{root / 'hisbridge.db'}"},
        "api": {"host": "127.0.0.1", "port": api_port, "max_body_bytes": 65536,
                "tokens": [{"name": "his", "role": "his", "token": {"$env": "BENCH_HIS_TOKEN"}}]},
        "outbox": {"poll_interval": 0.05, "batch": 200, "concurrency": 32},
        "logging": {"level": "warning"},
    }
    channel = {"destinations": [{"name": "fiscal", "adapter": "e_invoice", "config": {
        "base_url": platform_url, "appid": APPID, "app_key": {"$env": "BENCH_EINVOICE_KEY"}, "timeout": 10}}]}
    (conf / "hisbridge.yaml").write_text(yaml.safe_dump(daemon))
    (conf / "channels" / "einvoice.yaml").write_text(yaml.safe_dump(channel, allow_unicode=True))
    return conf


async def wait_until_up(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def burst(api: str, count: int, concurrency: int) -> tuple[float, int]:
    numbers = iter(range(count))
    accepted = 0

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        for number in numbers:
            answer = await client.post(f"{api}/api/v1/channels/einvoice", json=invoice(number),
                                       headers={"Authorization": f"Bearer {TOKEN}"})
            accepted += answer.status_code == 202

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))
    return time.perf_counter() - started, accepted


async def measure(count: int, concurrency: int, *, outage: bool) -> None:
    api_port, platform_port = free_port(), free_port()
    platform = f"http://127.0.0.1:{platform_port}"
    env = {**os.environ, "BENCH_HIS_TOKEN": TOKEN, "BENCH_EINVOICE_KEY": KEY, "HISBRIDGE_SIM_EINVOICE_KEY": KEY}
    with tempfile.TemporaryDirectory() as tmp:
        conf = write_conf(Path(tmp), api_port, platform + "/medical-web")
        simulate = ("-m", "plugins.e_invoice.simulator", "--port", str(platform_port))
        simulator = None if outage else await _start(env, *simulate)
        daemon = await _start(env, "-m", "engine.cli", "--conf", str(conf), "run")
        try:
            await wait_until_up(f"http://127.0.0.1:{api_port}/healthz")
            started = time.perf_counter()
            accept_seconds, accepted = await burst(f"http://127.0.0.1:{api_port}", count, concurrency)
            if simulator is None:  # the platform comes back only now: the drain is measured alone
                simulator = await _start(env, *simulate)
                await wait_until_up(f"{platform}/_sim/stats")
                started = time.perf_counter()
            async with httpx.AsyncClient(timeout=10) as client:
                while (stats := (await client.get(f"{platform}/_sim/stats")).json())["issued_count"] < accepted:
                    await asyncio.sleep(0.05)
            drained = time.perf_counter() - started
        finally:
            for process in (daemon, simulator):
                if process is None:
                    continue
                process.terminate()
                await asyncio.wait_for(process.wait(), 30)
    during = "while the platform was down" if outage else "while the outbox drained"
    print(f"burst of {count} invoices, {concurrency} concurrent HIS callers, accepted {during}")
    print(f"  accepted (202): {accepted} in {accept_seconds:.2f}s = {accepted / accept_seconds:.0f}/s")
    print(f"  issued by the platform: {stats['issued_count']} (calls {stats['calls']}) "
          f"in {drained:.2f}s from {'recovery' if outage else 'the first post'} = "
          f"{stats['issued_count'] / drained:.0f}/s")
    print(f"  exactly once: {stats['issued_count'] == stats['bills'] == accepted}")


async def _start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--outage", action="store_true",
                        help="accept the burst with the platform down, then start it and time the drain alone")
    args = parser.parse_args()
    asyncio.run(measure(args.count, args.concurrency, outage=args.outage))


if __name__ == "__main__":
    main()
