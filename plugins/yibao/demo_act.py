"""The demo's insurance act: the cashier settles with the insurance centre through an outage.

HIS posts 1101/2201/2207 to `yibao_cashier` (conf/channels) and waits; the engine signs in
once (9001), signs every call for the TIF gateway and answers with the centre's output. A
settlement whose answer is lost is reversed with 2601 and HIS hears it did not settle. While
the centre is down the breaker opens and HIS is told at once that insurance is suspended and
the payment can be taken as self-pay. After the centre comes back it revokes one settlement
behind the hospital's back, and reconciliation (3201, then 9101/3202/9102) finds it.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from engine.demo.acts import DemoAct, DemoStage
from plugins.yibao.adapter import YibaoAdapter
from plugins.yibao.cli import render_table, settlements_from_store
from plugins.yibao.reconcile import Reconciler
from plugins.yibao.signing import TifSigning
from plugins.yibao.simulator import CentreSimulator, Fault, GatewayAuth, SimulatorServer

CHANNEL = "yibao_cashier"
TOKEN_ENV = "HISBRIDGE_YIBAO_TIF_TOKEN"
AREA = "440300"
OUTAGE_CALLS = 6
# A restarted demo centre must not issue a setl_id the engine's log already holds (it outlives the
# demo): each run starts its ids at its start second × 1000, repeating only after 115 days (the
# store keeps 30); a run uses far fewer than 1000, and the ids stay within 10 digits.
SERIALS_PER_RUN = 1000
SECONDS_BEFORE_IDS_REPEAT = 10_000_000


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    milliseconds: float

    @property
    def error(self) -> dict[str, Any]:
        error = self.body.get("error")
        return error if isinstance(error, dict) else {}

    @property
    def output(self) -> dict[str, Any]:
        output = self.body.get("output")
        return output if isinstance(output, dict) else {}


class Cashier:
    """HIS at the cashier window: one patient's credential, visit and settlement calls."""

    def __init__(self, stage: DemoStage, run: str) -> None:
        self.stage = stage
        self.run = run

    async def call(self, infno: str, data: dict[str, Any]) -> Answer:
        started = time.perf_counter()
        response = await self.stage.post(f"/api/v1/channels/{CHANNEL}",
                                         {"infno": infno, "insuplc_admdvs": AREA, "input": {"data": data}})
        milliseconds = (time.perf_counter() - started) * 1000
        try:
            body = response.json()
        except ValueError:
            body = {}
        return Answer(response.status_code, body if isinstance(body, dict) else {}, milliseconds)

    async def visit(self, patient: int) -> tuple[dict[str, str], str]:
        """The patient's credential and a registered outpatient visit (1101, then 2201)."""
        cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": f"FAKE-DEMO-{patient:02d}"}
        person = await self.call("1101", cert)
        psn_no = str(person.output.get("baseinfo", {}).get("psn_no", ""))
        visit = await self.call("2201", {
            **cert, "psn_no": psn_no, "insutype": "310", "begntime": time.strftime("%Y-%m-%d %H:%M:%S"),
            "ipt_otp_no": f"MZ{self.run}{patient:02d}", "atddr_no": "D0001", "dr_name": "演示医生",
            "dept_code": "A03", "dept_name": "内科", "caty": "A03"})
        return {**cert, "psn_no": psn_no}, str(visit.output.get("data", {}).get("mdtrt_id", ""))

    async def settle(self, person: dict[str, str], mdtrt_id: str, medfee: float, *, account: bool = True) -> Answer:
        return await self.call("2207", {
            **person, "mdtrt_id": mdtrt_id, "med_type": "11", "medfee_sumamt": medfee, "psn_setlway": "01",
            "chrg_bchno": f"CB{mdtrt_id}", "insutype": "310", "acct_used_flag": "1" if account else "0"})


class YibaoAct(DemoAct):
    name = "yibao"
    title = ("Insurance at the cashier: settlements, a lost answer reversed, an outage answered at once "
             "as self-pay, a revoked settlement found by reconciliation")
    environment = {TOKEN_ENV: "demo-tif-paas-token-0123456789"}

    async def run(self, stage: DemoStage) -> bool:
        adapter = stage.daemon.engine.channel(CHANNEL).destinations[0].adapter
        assert isinstance(adapter, YibaoAdapter) and isinstance(adapter.settings.signing, TifSigning)
        url = httpx.URL(adapter.settings.base_url)
        auth = GatewayAuth(scheme="tif", paasid=adapter.settings.signing.paasid, token=os.environ[TOKEN_ENV])
        first_serial = int(time.time()) % SECONDS_BEFORE_IDS_REPEAT * SERIALS_PER_RUN
        simulator = CentreSimulator(admvs=adapter.settings.mdtrtarea_admvs, auth=auth, first_serial=first_serial)
        async with SimulatorServer(simulator, host=url.host, port=url.port or 80) as centre:
            return await _story(stage, centre, adapter)


def _settled(answer: Answer) -> str:
    info = answer.output.get("setlinfo", {})
    return (f"setl_id {info.get('setl_id')}, medfee {info.get('medfee_sumamt'):.2f} = fund "
            f"{info.get('fund_pay_sumamt'):.2f} + account {info.get('acct_pay'):.2f} + cash "
            f"{info.get('psn_cash_pay'):.2f}")


def _refused(answer: Answer) -> str:
    error = answer.error
    return (f"HTTP {answer.status} in {answer.milliseconds:.0f} ms, party {error.get('party')}, "
            f"rule {error.get('rule_id')}\n      {error.get('reason')}")


async def _story(stage: DemoStage, centre: SimulatorServer, adapter: YibaoAdapter) -> bool:
    say, state = stage.say, centre.simulator.state
    cashier = Cashier(stage, time.strftime("%H%M%S"))
    destination = stage.daemon.engine.channel(CHANNEL).destinations[0]
    say(f"insurance centre simulator {centre.url} (checks the TIF gateway signature); "
        f"HIS posts to /api/v1/channels/{CHANNEL}")

    say("\n1. Settlements at the cashier (1101 person, 2201 visit, 2207 settlement)")
    setl_ids: list[str] = []
    for patient, medfee, account in ((1, 120.0, True), (2, 86.5, False), (3, 240.0, True)):
        person, mdtrt_id = await cashier.visit(patient)
        settled = await cashier.settle(person, mdtrt_id, medfee, account=account)
        setl_ids.append(str(settled.output.get("setlinfo", {}).get("setl_id", "")))
        say(f"   patient {patient}: 2207 HTTP {settled.status} in {settled.milliseconds:.0f} ms, "
            + (_settled(settled) if settled.status == 200 else _refused(settled)))
    sign_ins = state.calls.count("9001")
    say(f"   the engine signed in {sign_ins}× (9001, operator {adapter.default_operator.opter}) "
        f"and reused the sign_no for {len(state.calls) - sign_ins} calls")
    all_settled = all(setl_ids) and sign_ins == 1

    say("\n2. A settlement whose answer is lost (the centre applies it, the connection drops)")
    person, mdtrt_id = await cashier.visit(4)
    state_before = len(state.settlements)
    centre.simulator.inject(Fault("drop", infno="2207"))
    lost = await cashier.settle(person, mdtrt_id, 55.0)
    say(f"   2207: {_refused(lost)}")
    statuses = [s.status for s in list(state.settlements.values())[state_before:]]
    say(f"   at the centre: the settlement was applied, then {statuses[0] if statuses else 'NOT FOUND'} "
        f"by 2601 ({state.calls.count('2601')} reversal call)")
    say(f"   hisbridge show {lost.error.get('message_id')}   # the lost 2207 and its 2601, step by step")
    reversed_ok = lost.error.get("rule_id") == "yibao.settlement.reversed" and statuses == ["reversed"]

    say("\n3. The centre goes down")
    person, mdtrt_id = await cashier.visit(5)
    await centre.stop()
    outage = [await cashier.settle(person, mdtrt_id, 66.0) for _ in range(OUTAGE_CALLS)]
    for answer in outage:
        say(f"   2207: HTTP {answer.status} in {answer.milliseconds:.0f} ms, rule {answer.error.get('rule_id')}")
    for rule_id, reason in {a.error.get("rule_id"): a.error.get("reason") for a in outage}.items():
        say(f"   {rule_id}: {reason}")
    breaker = {b.name: b.state for b in stage.daemon.engine.breakers.states()}.get(destination.name)
    suspended = [a for a in outage if a.status == 503 and "self-pay" in str(a.error.get("reason"))]
    say(f"   breaker {destination.name}: {breaker}; {len(suspended)} of {OUTAGE_CALLS} calls told at once "
        f"(slowest {max((a.milliseconds for a in suspended), default=0):.0f} ms) to take the payment as self-pay")
    short_circuited = bool(suspended) and breaker == "open"

    say("\n4. The centre recovers")
    await centre.start()
    reset = destination.config.breaker.reset_timeout
    say(f"   waiting for the breaker's probe (reset timeout {reset:.0f} s)")
    await asyncio.sleep(reset + 0.2)
    recovered = await cashier.settle(person, mdtrt_id, 66.0)
    say(f"   2207: HTTP {recovered.status} in {recovered.milliseconds:.0f} ms, "
        + (_settled(recovered) if recovered.status == 200 else _refused(recovered)))
    setl_ids.append(str(recovered.output.get("setlinfo", {}).get("setl_id", "")))
    back = recovered.status == 200

    revoked = setl_ids[0]
    say(f"\n5. The centre revokes settlement {revoked} behind the hospital's back")
    revoking = await stage.http.post(f"{centre.url}/_sim/revoke", json={"setl_id": revoked})
    say(f"   POST /_sim/revoke: HTTP {revoking.status_code}; HIS and the engine were not told")

    found = await _reconcile(stage, adapter, set(setl_ids))
    say(f"   hisbridge messages --key setl_id={revoked}   # the settlement, by the id only the centre's answer had")
    return all_settled and reversed_ok and short_circuited and back and found == [("centre_revoked", revoked)]


async def _reconcile(stage: DemoStage, adapter: YibaoAdapter, setl_ids: set[str]) -> list[tuple[str, str]]:
    """Reconcile today's settlements of this run (the engine's log also holds earlier runs',
    which this run's centre never saw); returns the differences found as (kind, setl_id)."""
    today = date.today()
    stage.say(f"\n6. Reconciliation for {today}: totals (3201), then details (9101 → 3202 → 9102)")
    logged = await settlements_from_store(stage.daemon.engine.store, CHANNEL, today, today)
    records = {setl_id: record for setl_id, record in logged.items() if setl_id in setl_ids}
    report = await Reconciler(adapter.centre, adapter.sessions, adapter.default_operator).run(records, today, today)
    for line in render_table(report).splitlines():
        stage.say(f"   {line}")
    stage.say(f"   hisbridge yibao reconcile --date {today}   # the same from the command line, over the whole day")
    return [(d.kind.value, d.setl_id) for group in report.groups for d in group.differences]


__all__ = ["YibaoAct"]
