"""The demo's drug-trace act: a pharmacy sale with its trace codes, from the window to the centre.

The pharmacy posts sales and returns to `drug_trace_pharmacy` (conf/channels) and gets 202
at once; the outbox uploads them to the insurance centre (the yibao simulator) as 3505 and
3506 with the `drugtracinfo` list. A malformed code and a code sold twice are refused at the
window with a 422 naming the code, and nothing of theirs is sent. A return the centre
refuses because it dropped the sign-in is signed in again and sent once. A case (large-package)
code scanned at the window is expanded into its box codes through the 码上放心 relation
query (its simulator) before upload. Every code of a sale finds the sale again.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx

from engine.demo.acts import DemoAct, DemoStage
from plugins.drug_trace.adapter import DrugTraceAdapter, DrugTraceConfig
from plugins.drug_trace.simulator import RelationServer, RelationSimulator
from plugins.yibao.simulator import CentreSimulator, Fault, SimulatorServer

CHANNEL = "drug_trace_pharmacy"
RELATION_CHANNEL = "drug_trace_relation"
SECRET_ENV = "HISBRIDGE_ALIHEALTH_APP_SECRET"
BOX_PREFIX = "8123457"  # 阿莫西林胶囊 (盒) in conf/drug_trace_codes.csv
CASE_PREFIX = "8123456"  # 阿莫西林胶囊 (箱), marked `large` there
UPLOAD_SECONDS = 20.0


def address(url: str) -> tuple[str, int]:
    parsed = httpx.URL(url)
    return parsed.host, parsed.port or 80


def codes(run: str, *serials: int, prefix: str = BOX_PREFIX) -> list[str]:
    """Synthetic codes, unique per run (the sale ledger outlives the demo)."""
    return [f"{prefix}{run}{serial:03d}" for serial in serials]


def sale(document: str, trace_codes: list[str], *, kind: str = "sale") -> dict[str, Any]:
    return {"kind": kind, "trace_codes": trace_codes, "record": {
        "fixmedins_hilist_id": "YP0001", "fixmedins_hilist_name": "阿莫西林胶囊", "fixmedins_bchno": "PC261101",
        "rx_flag": "1", "trdn_flag": "0", "sel_retn_cnt": len(trace_codes),
        "sel_retn_time": time.strftime("%Y-%m-%d %H:%M:%S"), "sel_retn_opter_name": "演示药师",
        "rtal_docno": document, "mdtrt_setl_type": "2",
    }}


class DrugTraceAct(DemoAct):
    name = "drug_trace"
    title = "A pharmacy sale with trace codes: checked at the window, uploaded to the centre, found by any code"
    environment = {SECRET_ENV: "demo-alihealth-app-secret"}

    async def run(self, stage: DemoStage) -> bool:
        config = stage.daemon.engine.channel(CHANNEL).destinations[0].adapter.config
        assert isinstance(config, DrugTraceConfig) and config.relation is not None
        host, port = address(config.base_url)
        gateway_host, gateway_port = address(config.relation.gateway_url)
        relations = RelationSimulator(app_key=config.relation.app_key, secret=os.environ[SECRET_ENV])
        async with SimulatorServer(CentreSimulator(), host=host, port=port) as centre, \
                RelationServer(relations, host=gateway_host, port=gateway_port) as gateway:
            return await _story(stage, centre, gateway)


def _uploads(centre: SimulatorServer, infno: str) -> list[list[str]]:
    return [[row["drug_trac_codg"] for row in input_["selinfo"]["drugtracinfo"]]
            for sent, input_ in centre.simulator.state.inventory if sent == infno]


async def _refused(stage: DemoStage, call: dict[str, Any], what: str) -> bool:
    answer = await stage.post(f"/api/v1/channels/{CHANNEL}", call)
    error = answer.json().get("error", {}) if answer.status_code >= 400 else {}
    stage.say(f"   {what}: HTTP {answer.status_code}, party {error.get('party')}, field {error.get('field')}")
    stage.say(f"      {error.get('reason')}")
    return answer.status_code == 422 and error.get("party") == "his" and bool(error.get("field"))


async def _found_by(stage: DemoStage, code: str, message_id: str | None) -> list[str]:
    """The messages carrying `code`; waits a little for `message_id` among them, since a box
    code is indexed when the upload's reply is recorded, just after the centre has it."""
    deadline = time.monotonic() + 5
    while True:
        found = await stage.daemon.engine.store.find_by_key("trace_code", code)
        if message_id in found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


async def _story(stage: DemoStage, centre: SimulatorServer, gateway: RelationServer) -> bool:
    say = stage.say
    run = time.strftime("%H%M%S") + f"{int(time.time() * 1000) % 10000:04d}"
    adapter = stage.daemon.engine.channel(CHANNEL).destinations[0].adapter
    assert isinstance(adapter, DrugTraceAdapter) and isinstance(adapter.config, DrugTraceConfig)
    say(f"insurance centre simulator {centre.url}; 码上放心 gateway simulator {gateway.gateway_url}; "
        f"mapping table {adapter.config.mapping_table}")

    sold = codes(run, 1, 2)
    say(f"\n1. Sale LS{run}: 2 boxes of 阿莫西林胶囊, codes {', '.join(sold)}")
    accepted = await stage.post(f"/api/v1/channels/{CHANNEL}", sale(f"LS{run}", sold))
    sale_id = accepted.json().get("message_id") if accepted.status_code == 202 else None
    say(f"   HIS got HTTP {accepted.status_code} at once ({sale_id})")
    uploaded = await stage.wait_for(lambda: sold in _uploads(centre, "3505"), UPLOAD_SECONDS)
    say(f"   the centre received 3505 with drugtracinfo {_uploads(centre, '3505')[-1] if uploaded else 'NOTHING'}")

    say("\n2. Bad input is refused at the window, nothing sent")
    malformed = [*codes(run, 3), f"{BOX_PREFIX}{run}04"]
    refused_malformed = await _refused(stage, sale(f"LS{run}B", malformed), f"a 19-digit code {malformed[1]}")
    refused_duplicate = await _refused(stage, sale(f"LS{run}C", sold[:1]), f"{sold[0]} sold again")
    nothing_sent = len(centre.simulator.state.inventory) == 1

    say(f"\n3. Return TH{run}: the first box comes back; meanwhile the centre has dropped our sign-in")
    centre.simulator.inject(Fault("sign_in_invalid", "3506"))
    sign_ins = centre.simulator.state.calls.count("9001")
    returned = await stage.post(f"/api/v1/channels/{CHANNEL}", sale(f"TH{run}", sold[:1], kind="return"))
    say(f"   HIS got HTTP {returned.status_code}")
    back = await stage.wait_for(lambda: sold[:1] in _uploads(centre, "3506"), UPLOAD_SECONDS)
    once = back and len(_uploads(centre, "3506")) == 1
    say(f"   the centre refused 3506 (sign-in invalid); the engine signed in again "
        f"({centre.simulator.state.calls.count('9001') - sign_ins}× 9001) and sent it once more")
    say(f"   the centre received 3506 {len(_uploads(centre, '3506'))}× with drugtracinfo "
        f"{sold[:1] if back else 'NOTHING'}")

    case, boxes = codes(run, 1, prefix=CASE_PREFIX)[0], codes(run, 11, 12, 13)
    gateway.simulator.add_package(case, boxes)
    say(f"\n4. A whole case scanned at the window: {case}")
    asked = await stage.post(f"/api/v1/channels/{RELATION_CHANNEL}", {"code": case})
    say(f"   {RELATION_CHANNEL} (sync, 码上放心 relation query): HTTP {asked.status_code}, "
        f"{len(asked.json().get('small_codes', [])) if asked.status_code == 200 else 0} boxes inside")
    case_sale = await stage.post(f"/api/v1/channels/{CHANNEL}", sale(f"LS{run}D", [case]))
    case_id = case_sale.json().get("message_id") if case_sale.status_code == 202 else None
    expanded = await stage.wait_for(lambda: boxes in _uploads(centre, "3505"), UPLOAD_SECONDS)
    say(f"   sale LS{run}D: HTTP {case_sale.status_code}; the centre received 3505 with the case's "
        f"{'box codes ' + ', '.join(boxes) if expanded else 'codes NOT expanded'}")

    say("\n5. Any code finds its sale")
    found = await stage.daemon.engine.store.find_by_key("trace_code", sold[-1])
    say(f"   trace_code={sold[-1]} → {found}")
    by_box = await _found_by(stage, boxes[-1], case_id)
    say(f"   trace_code={boxes[-1]} (a box of the case) → {by_box}")
    say(f"   hisbridge messages --channel {CHANNEL} --key trace_code={boxes[-1]}")
    say("   hisbridge drug-trace status --since 1h")
    return (uploaded and refused_malformed and refused_duplicate and nothing_sent and once and expanded
            and sale_id is not None and sale_id in found and case_id is not None and case_id in by_box)


__all__ = ["DrugTraceAct"]
