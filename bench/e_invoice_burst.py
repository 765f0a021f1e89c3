"""The e-invoice async path under a burst: how fast HIS gets its 202s, how fast the outbox issues.

Three processes, as in production: the fiscal platform simulator, the daemon (`hisbridge run`
on a fresh SQLite store, one async e_invoice channel) and this load generator (aiohttp, so
the generator itself costs little CPU). For each mode it prints

- the accept rate (HIS-facing: 202s per second over the burst),
- the drain rate (platform-facing: bills issued per second until the simulator holds all),
- the daemon's CPU time per invoice (user + system, from /proc: comparable on a busy machine,
  unlike the rates), and the load average before and after,
- whether every busNo was issued exactly once (the simulator counts).

Modes: `live` (the platform is up during the burst: accepting and draining compete for the
daemon) and `outage` (the platform is down during the burst and started afterwards, so the
accept rate and the drain rate are each measured alone).

    python bench/e_invoice_burst.py [--count 5000] [--concurrency 32] [--mode live|outage|both]
                                    [--profile DAEMON.prof]   # the daemon's main thread under cProfile
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

TOKEN = "bench-his-token"
APPID, KEY = "TESTAPPID0001", "testkey123"
CHANNEL = "einvoice"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def invoice(run: str, number: int) -> dict[str, Any]:
    return {"method": "outpatient", "data": {
        "busNo": f"BENCH{run}{number:07d}", "payer": "压测患者", "busDateTime": "20261122094000123",
        "placeCode": "KPD001", "payee": "压测收费员", "author": "压测收费员", "totalAmt": "25.50",
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
    channel = {"destinations": [{
        "name": "fiscal", "adapter": "e_invoice",
        "breaker": {"fail_max": 5, "reset_timeout": 0.5},
        "outbox": {"max_attempts": 1000, "initial_backoff": 0.2, "max_backoff": 1},
        "config": {"base_url": platform_url, "appid": APPID, "app_key": {"$env": "BENCH_EINVOICE_KEY"},
                   "timeout": 10},
    }]}
    (conf / "hisbridge.yaml").write_text(yaml.safe_dump(daemon))
    (conf / "channels" / f"{CHANNEL}.yaml").write_text(yaml.safe_dump(channel, allow_unicode=True))
    return conf


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


async def wait_until_up(session: aiohttp.ClientSession, url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            async with session.get(url) as answer:
                await answer.read()
                return
        except aiohttp.ClientError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def burst(session: aiohttp.ClientSession, api: str, count: int, concurrency: int) -> tuple[float, int]:
    """Post `count` invoices from `concurrency` callers; seconds taken and 202s received."""
    run = time.strftime("%H%M%S")
    numbers = iter(range(count))
    accepted = 0

    async def caller() -> None:
        nonlocal accepted
        for number in numbers:
            async with session.post(f"{api}/api/v1/channels/{CHANNEL}", json=invoice(run, number),
                                    headers={"Authorization": f"Bearer {TOKEN}"}) as answer:
                await answer.read()
                accepted += answer.status == 202

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return time.perf_counter() - started, accepted


@dataclass
class Result:
    mode: str
    count: int
    concurrency: int
    accepted: int
    accept_seconds: float
    accept_cpu: float
    issued: int
    bills: int
    calls: int
    drain_seconds: float
    drain_cpu: float
    load_before: str
    load_after: str

    def report(self) -> str:
        drained_from = "from recovery" if self.mode == "outage" else "from the first post"
        return "\n".join([
            f"{self.mode}: burst of {self.count} invoices from {self.concurrency} HIS callers "
            f"(load average before {self.load_before}, after {self.load_after})",
            f"  accepted (202): {self.accepted} in {self.accept_seconds:.2f}s = "
            f"{self.accepted / self.accept_seconds:.0f}/s; daemon CPU {self.accept_cpu * 1000 / self.count:.2f} ms "
            "per invoice",
            f"  issued: {self.issued} bills ({self.calls} platform calls) in {self.drain_seconds:.2f}s "
            f"{drained_from} = {self.issued / self.drain_seconds:.0f}/s; daemon CPU "
            f"{self.drain_cpu * 1000 / max(self.issued, 1):.2f} ms per invoice"
            + (" (accepting included)" if self.mode == "live" else ""),
            f"  exactly once: {self.issued == self.bills == self.accepted}",
        ])


async def measure(count: int, concurrency: int, *, outage: bool, profile: str | None = None) -> Result:
    api_port, platform_port = free_port(), free_port()
    api, platform = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{platform_port}"
    env = {**os.environ, "BENCH_HIS_TOKEN": TOKEN, "BENCH_EINVOICE_KEY": KEY, "HISBRIDGE_SIM_EINVOICE_KEY": KEY}
    simulate = ("-m", "plugins.e_invoice.simulator", "--port", str(platform_port), "--appid", APPID)
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        conf = write_conf(Path(tmp), api_port, platform + "/medical-web")
        simulator = None if outage else await _start(env, *simulate)
        profiled = ("-m", "cProfile", "-o", profile) if profile else ()
        daemon = await _start(env, *profiled, "-m", "engine.cli", "--conf", str(conf), "run")
        connector = aiohttp.TCPConnector(limit=concurrency)
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
                await wait_until_up(session, f"{api}/healthz")
                if simulator is not None:
                    await wait_until_up(session, f"{platform}/_sim/stats")
                cpu_start = cpu_seconds(daemon.pid)
                started = time.perf_counter()
                accept_seconds, accepted = await burst(session, api, count, concurrency)
                accept_cpu = cpu_seconds(daemon.pid) - cpu_start
                if simulator is None:  # the platform comes back only now: the drain is measured alone
                    simulator = await _start(env, *simulate)
                    await wait_until_up(session, f"{platform}/_sim/stats")
                    started, cpu_start = time.perf_counter(), cpu_seconds(daemon.pid)
                while True:
                    async with session.get(f"{platform}/_sim/stats") as answer:
                        stats = await answer.json()
                    if stats["issued_count"] >= accepted:
                        break
                    await asyncio.sleep(0.05)
                drain_seconds = time.perf_counter() - started
                drain_cpu = cpu_seconds(daemon.pid) - cpu_start
        finally:
            for process in (daemon, simulator):
                if process is not None:
                    process.terminate()
                    await asyncio.wait_for(process.wait(), 30)
    return Result("outage" if outage else "live", count, concurrency, accepted, accept_seconds, accept_cpu,
                  stats["issued_count"], stats["bills"], stats["calls"], drain_seconds, drain_cpu,
                  load_before, load_average())


async def _start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--mode", choices=("live", "outage", "both"), default="both")
    parser.add_argument("--profile", metavar="FILE", help="run the daemon under cProfile, writing FILE[.mode]")
    args = parser.parse_args()
    modes = ("live", "outage") if args.mode == "both" else (args.mode,)
    for mode in modes:
        profile = f"{args.profile}.{mode}" if args.profile else None
        result = asyncio.run(measure(args.count, args.concurrency, outage=mode == "outage", profile=profile))
        print(result.report(), flush=True)


if __name__ == "__main__":
    main()
