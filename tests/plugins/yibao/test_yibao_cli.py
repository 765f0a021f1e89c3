"""`hisbridge yibao reconcile` over a real conf dir, the engine's store and the simulated centre."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from engine.catalogue import Catalogue
from engine.cli import main
from engine.config.loader import base_dir, load_config
from engine.message import Payload
from engine.plugin_manager import create_plugin_manager
from engine.runtime import Engine
from plugins.yibao.simulator import SimulatorServer
from tests.plugins.yibao.conftest import adapter_config
from tests.plugins.yibao.yibao_calls import FAKE_CERT_NO, TIF_TOKEN


def write_conf(root: Path, centre_url: str) -> Path:
    conf = root / "conf"
    (conf / "channels").mkdir(parents=True)
    (conf / "hisbridge.yaml").write_text(yaml.safe_dump({"store": {"url": "sqlite:///var/hisbridge.db"}}))
    channel = {"destinations": [{"name": "centre", "adapter": "yibao", "retry": {"attempts": 1},
                                 "config": adapter_config(centre_url)}]}
    (conf / "channels" / "insurance.yaml").write_text(yaml.safe_dump(channel, allow_unicode=True))
    return conf


async def settle_through_the_engine(conf: Path, count: int) -> list[str]:
    """`count` settlements through the engine (so they are in its store); the last is cancelled."""
    pm = create_plugin_manager()
    catalogue = Catalogue.build(pm)
    engine = await Engine.start(load_config(conf, catalogue=catalogue), pm=pm, catalogue=catalogue,
                                base_dir=base_dir(conf), run_outbox=False, run_sources=False)

    async def call(body: dict[str, object]) -> dict[str, object]:
        outcome = await engine.call("insurance", Payload.from_json(body), caller="his")
        assert outcome.reply is not None, outcome.error
        return outcome.reply.json()

    try:
        cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO}
        person = await call({"infno": "1101", "input": {"data": cert}})
        psn_no = person["output"]["baseinfo"]["psn_no"]
        setl_ids = []
        for number in range(count):
            visit = await call({"infno": "2201", "insuplc_admdvs": "440300", "input": {"data": {
                "psn_no": psn_no, "insutype": "310", "begntime": "2026-11-01 09:00:00", "mdtrt_cert_type": "02",
                "mdtrt_cert_no": FAKE_CERT_NO, "ipt_otp_no": f"MZ{number}", "atddr_no": "D1", "dr_name": "测试医生",
                "dept_code": "A01", "dept_name": "内科", "caty": "A03"}}})
            mdtrt_id = visit["output"]["data"]["mdtrt_id"]
            settled = await call({"infno": "2207", "insuplc_admdvs": "440300", "input": {"data": {
                "psn_no": psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO, "med_type": "11",
                "medfee_sumamt": 80.0 + number, "psn_setlway": "01", "mdtrt_id": mdtrt_id,
                "chrg_bchno": f"CB{number}", "insutype": "310", "acct_used_flag": "1"}}})
            setl_ids.append(settled["output"]["setlinfo"]["setl_id"])
        await call({"infno": "2208", "insuplc_admdvs": "440300", "input": {"data": {
            "setl_id": setl_ids[-1], "mdtrt_id": mdtrt_id, "psn_no": psn_no}}})
        return setl_ids
    finally:
        await engine.stop()


def reconcile(conf: Path, *options: str) -> Result:
    return CliRunner().invoke(main, ["--conf", str(conf), "yibao", "reconcile", *options])


async def test_reconcile_finds_what_the_centre_revoked(
    centre: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIBAO_TEST_TIF_TOKEN", TIF_TOKEN)
    conf = write_conf(tmp_path, centre.url)
    setl_ids = await settle_through_the_engine(conf, 3)
    day = next(iter(centre.simulator.state.settlements.values())).setl_date.isoformat()

    balanced = await asyncio.to_thread(reconcile, conf, "--date", day)
    assert balanced.exit_code == 0, balanced.output
    assert "BALANCED" in balanced.output and "2 settlements" in balanced.output

    centre.simulator.state.revoke(setl_ids[0])
    result = await asyncio.to_thread(reconcile, conf, "--date", day, "--format", "json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.output)
    assert not document["balanced"]
    assert [(d["kind"], d["setl_id"]) for d in document["differences"]] == [("centre_revoked", setl_ids[0])]

    as_csv = await asyncio.to_thread(reconcile, conf, "--date", day, "--format", "csv", "--insutype", "310")
    assert as_csv.exit_code == 1
    assert as_csv.output.splitlines()[0].startswith("insutype,clr_type,setl_optins,kind,setl_id")
    assert f"centre_revoked,{setl_ids[0]}" in as_csv.output

    ledger = tmp_path / "his_ledger.csv"
    ledger.write_text("setl_id,medfee_sumamt,status\n"
                      f"{setl_ids[0]},80.00,settled\n{setl_ids[1]},81.00,settled\n{setl_ids[2]},82.00,cancelled\n")
    with_his = await asyncio.to_thread(reconcile, conf, "--date", day, "--format", "json", "--his-ledger", str(ledger))
    kinds = [(d["kind"], d["setl_id"]) for d in json.loads(with_his.output)["differences"]]
    assert kinds == [("centre_revoked", setl_ids[0]), ("his_counts_revoked", setl_ids[0])]


def test_reconcile_needs_a_yibao_destination(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "channels").mkdir(parents=True)
    (conf / "hisbridge.yaml").write_text("{}\n")
    result = reconcile(conf, "--date", "2026-11-01")
    assert result.exit_code == 2 and "exactly one yibao destination" in result.output


async def test_the_setl_id_the_centre_gave_finds_the_settlement(
    centre: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YIBAO_TEST_TIF_TOKEN", TIF_TOKEN)
    conf = write_conf(tmp_path, centre.url)
    kept, _cancelled = await settle_through_the_engine(conf, 2)  # HIS never sent the setl_id: only the answer has it

    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["--conf", str(conf), "messages", "--key", f"setl_id={kept}", "--json"]
    )

    assert result.exit_code == 0, result.output
    found = [json.loads(line) for line in result.output.splitlines()]
    assert [(m["status"], m["business_keys"]["infno"], m["business_keys"]["setl_id"]) for m in found] == [
        ("replied", "2207", kept)
    ]


def test_the_simulator_command_wants_the_tif_token_it_is_told_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HISBRIDGE_SIM_TIF_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["simulate", "yibao", "--tif-paasid", "mbs_fsi_auth"])
    assert result.exit_code == 2 and "HISBRIDGE_SIM_TIF_TOKEN" in result.output
