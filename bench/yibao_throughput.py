"""yibao calls through the daemon against the same calls straight to the centre simulator.

Three processes, as in production: the centre simulator (`python -m plugins.yibao.simulator`,
TIF signature checked), the daemon (`hisbridge run` on a fresh SQLite store, one sync yibao
channel) and this load generator. Both paths use the same client: the engine's own HTTP
client (`HttpClients`, httpx over aiohttp). Straight to the centre, the generator does what
the adapter would (plugins.yibao.api: envelope, msgid, sign-in, TIF headers, answer parsing)
through `CentreClient`; through the daemon, it posts HIS's business fields to the channel.

For 1101 (a query: the engine may repeat it, the store is written after the call) and 2207
(a settlement: never repeated, committed before the request leaves), at 1 and 16 callers,
it prints requests/s, p50/p99 and CPU milliseconds per request of each process: the daemon,
the simulator, and this generator (which, on the direct path, also does the envelope and
signing work the daemon does on the other). On a shared machine compare the CPU columns,
not req/s; the load average is printed with the table.

    python bench/yibao_throughput.py [--requests 1000] [--profile DAEMON.prof]   # the daemon under cProfile
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from engine.adapters.base import Wire
from engine.transports.http import HttpClients
from plugins.yibao.api import CentreClient, Deployment, MsgIdGenerator, Operator, SignInSessions, build_signer
from plugins.yibao.signing import TifSigning

HIS_TOKEN = "bench-his-token"
PAASID, TIF_TOKEN = "bench_paas", "bench-tif-token-0123456789abcdef"
DAEMON_CODE, DIRECT_CODE = "H44030400123", "H44030400999"  # separate msgid spaces at one centre
AREA = "440300"
CERT = {"mdtrt_cert_type": "02", "mdtrt_cert_no": "FAKE-BENCH-0001"}
OPERATOR = Operator("0153", "压测收费员", "1")

Call = Callable[[str, dict[str, Any]], Awaitable[bool]]
"""One call of `infno` with its input; True when the centre answered infcode 0."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Row:
    path: str
    infno: str
    callers: int
    rps: float
    p50_ms: float
    p99_ms: float
    ok: int
    requests: int
    daemon_cpu_ms: float
    simulator_cpu_ms: float
    generator_cpu_ms: float

    def line(self) -> str:
        return (f"{self.path:<10}{self.infno:>6}{self.callers:>8}{self.rps:>8.0f}{self.p50_ms:>8.2f}"
                f"{self.p99_ms:>8.2f}{self.daemon_cpu_ms:>9.2f}{self.simulator_cpu_ms:>9.2f}"
                f"{self.generator_cpu_ms:>9.2f}  {self.ok}/{self.requests} ok")


HEADER = (f"{'path':<10}{'infno':>6}{'callers':>8}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'daemon':>9}{'sim':>9}{'gen':>9}  (CPU ms per request)")


async def load(
    call: Call, infno: str, data: dict[str, Any], *, requests: int, callers: int
) -> tuple[float, list[float], int]:
    """`requests` calls from `callers` concurrent callers: seconds, latencies, successes."""
    remaining = iter(range(requests))
    latencies: list[float] = []
    ok = 0

    async def caller() -> None:
        nonlocal ok
        for _ in remaining:
            started = time.perf_counter()
            answered = await call(infno, {"data": data})
            ok += answered
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return time.perf_counter() - started, latencies, ok


async def measured(path: str, call: Call, infno: str, data: dict[str, Any], *, requests: int, callers: int,
                   daemon: int, simulator: int) -> Row:
    await load(call, infno, data, requests=min(50, requests), callers=callers)  # warm-up: connections, caches
    before = cpu_seconds(daemon), cpu_seconds(simulator), time.process_time()
    seconds, latencies, ok = await load(call, infno, data, requests=requests, callers=callers)
    after = cpu_seconds(daemon), cpu_seconds(simulator), time.process_time()
    per_request = [(a - b) * 1000 / requests for a, b in zip(after, before, strict=True)]
    return Row(path, infno, callers, requests / seconds, statistics.median(latencies) * 1000,
               percentile(latencies, 0.99) * 1000, ok, requests, *per_request)


def through_daemon(http: httpx.AsyncClient, api: str) -> Call:
    async def call(infno: str, input: dict[str, Any]) -> bool:
        answer = await http.post(f"{api}/api/v1/channels/yibao", json={
            "infno": infno, "insuplc_admdvs": AREA, "input": input}, headers={"Authorization": f"Bearer {HIS_TOKEN}"})
        return answer.status_code == 200 and answer.json().get("infcode") == 0

    return call


def straight_to_centre(http: httpx.AsyncClient, centre_url: str) -> Call:
    signing = TifSigning.model_validate({"scheme": "tif", "paasid": PAASID, "token": {"$env": "BENCH_TIF_TOKEN"}})
    centre = CentreClient(
        http=http, base_url=centre_url, deployment=Deployment(DIRECT_CODE, "压测医院", AREA),
        signer=build_signer(signing, base_url=centre_url, fixmedins_code=DIRECT_CODE),
        msgids=MsgIdGenerator(DIRECT_CODE),
    )
    sessions = SignInSessions(centre, mac="00-00-00-00-00-00", ip="127.0.0.1")

    async def call(infno: str, input: dict[str, Any]) -> bool:
        wire = Wire()
        envelope = centre.envelope(infno=infno, input=input, operator=OPERATOR,
                                   sign_no=await sessions.sign_no(OPERATOR, wire), insuplc_admdvs=AREA)
        reply = await centre.post(envelope, wire)
        return reply.answer is not None and reply.answer.ok

    return call


def write_conf(root: Path, api_port: int, centre_url: str) -> Path:
    conf = root / "conf"
    (conf / "channels").mkdir(parents=True)
    (conf / "hisbridge.yaml").write_text(yaml.safe_dump({
        "store": {"url": f"sqlite:///{root / 'bench.db'}"},
        "api": {"host": "127.0.0.1", "port": api_port,
                "tokens": [{"name": "his", "role": "his", "token": {"$env": "BENCH_HIS_TOKEN"}}]},
        "logging": {"level": "warning"},
    }))
    (conf / "channels" / "yibao.yaml").write_text(yaml.safe_dump({"destinations": [{
        "name": "centre", "adapter": "yibao", "delivery": "sync", "retry": {"attempts": 1},
        "breaker": {"fail_max": 1000},
        "config": {"base_url": centre_url, "fixmedins_code": DAEMON_CODE, "fixmedins_name": "压测医院",
                   "mdtrtarea_admvs": AREA, "operator": {"opter": OPERATOR.opter, "opter_name": OPERATOR.opter_name},
                   "signing": {"scheme": "tif", "paasid": PAASID, "token": {"$env": "BENCH_TIF_TOKEN"}},
                   "timeout": 30},
    }]}, allow_unicode=True))
    return conf


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_until_up(http: httpx.AsyncClient, url: str) -> None:
    for _ in range(300):
        try:
            await http.get(url)
            return
        except httpx.TransportError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def settlement_input(http: httpx.AsyncClient, api: str) -> dict[str, Any]:
    """A person and an open visit (1101, 2201 through the daemon) every 2207 settles against."""
    person = await http.post(f"{api}/api/v1/channels/yibao", json={"infno": "1101", "input": {"data": CERT}},
                             headers={"Authorization": f"Bearer {HIS_TOKEN}"})
    psn_no = person.json()["output"]["baseinfo"]["psn_no"]
    visit = await http.post(f"{api}/api/v1/channels/yibao", headers={"Authorization": f"Bearer {HIS_TOKEN}"}, json={
        "infno": "2201", "insuplc_admdvs": AREA, "input": {"data": {
            **CERT, "psn_no": psn_no, "insutype": "310", "begntime": time.strftime("%Y-%m-%d %H:%M:%S"),
            "ipt_otp_no": "MZBENCH", "atddr_no": "D1", "dr_name": "压测医生", "dept_code": "A03",
            "dept_name": "内科", "caty": "A03"}}})
    return {**CERT, "psn_no": psn_no, "mdtrt_id": visit.json()["output"]["data"]["mdtrt_id"], "med_type": "11",
            "medfee_sumamt": 25.5, "psn_setlway": "01", "chrg_bchno": "CBBENCH", "insutype": "310",
            "acct_used_flag": "0"}


async def run(requests: int, profile: str | None) -> list[Row]:
    api_port, centre_port = free_port(), free_port()
    api, centre_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{centre_port}"
    os.environ.update(BENCH_HIS_TOKEN=HIS_TOKEN, BENCH_TIF_TOKEN=TIF_TOKEN, HISBRIDGE_SIM_TIF_TOKEN=TIF_TOKEN)
    clients = HttpClients()
    http = clients.http_client(timeout=60)
    with tempfile.TemporaryDirectory() as tmp:
        conf = write_conf(Path(tmp), api_port, centre_url)
        simulator = subprocess.Popen([sys.executable, "-m", "plugins.yibao.simulator", "--port", str(centre_port),
                                      "--tif-paasid", PAASID], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        profiled = ("-m", "cProfile", "-o", profile) if profile else ()
        daemon = subprocess.Popen([sys.executable, *profiled, "-m", "engine.cli", "--conf", str(conf), "run"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await wait_until_up(http, f"{api}/healthz")
            await wait_until_up(http, f"{centre_url}/_sim/settlements")
            paths = {"daemon": through_daemon(http, api), "direct": straight_to_centre(http, centre_url)}
            settle = await settlement_input(http, api)
            rows = []
            for infno, data in (("1101", CERT), ("2207", settle)):
                for callers in (1, 16):
                    for name, call in paths.items():
                        rows.append(await measured(name, call, infno, data, requests=requests, callers=callers,
                                                   daemon=daemon.pid, simulator=simulator.pid))
        finally:
            for process in (daemon, simulator):
                process.terminate()
                process.wait(30)
            await clients.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="measured calls per row (after 50 to warm up)")
    parser.add_argument("--profile", metavar="FILE", help="run the daemon under cProfile, writing FILE")
    args = parser.parse_args()
    before = " ".join(f"{value:.2f}" for value in os.getloadavg())
    rows = asyncio.run(run(args.requests, args.profile))
    after = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average before {before}, after {after}; {os.cpu_count()} CPUs")
    print(HEADER)
    for row in rows:
        print(row.line())
    by_key = {(r.path, r.infno, r.callers): r for r in rows}
    for infno in ("1101", "2207"):
        for callers in (1, 16):
            daemon, direct = by_key[("daemon", infno, callers)], by_key[("direct", infno, callers)]
            print(f"{infno} with {callers} caller(s): the daemon adds {daemon.p50_ms - direct.p50_ms:.2f} ms at p50, "
                  f"{daemon.p99_ms - direct.p99_ms:.2f} ms at p99; daemon CPU {daemon.daemon_cpu_ms:.2f} ms per call")


if __name__ == "__main__":
    main()
