"""Reconciliation finds exactly the settlements the simulated centre and the log disagree on."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pytest

from plugins.yibao.adapter import YibaoAdapter
from plugins.yibao.reconcile import (
    DifferenceKind,
    Reconciler,
    SettlementRecord,
    detail_file,
    differences,
    parse_result_file,
    records_from_calls,
)
from plugins.yibao.simulator import SimulatorServer
from tests.plugins.yibao.yibao_calls import FAKE_CERT_NO, call


async def settle_several(adapter: YibaoAdapter, count: int) -> list[tuple[str, str, dict[str, object]]]:
    """`count` outpatient settlements plus one settled and cancelled; the calls as the log has them."""
    person, _ = await call(adapter, "1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO}})
    psn_no = person["output"]["baseinfo"]["psn_no"]
    area = {"insuplc_admdvs": "440300"}
    log: list[tuple[str, str, dict[str, object]]] = []
    for number in range(count + 1):
        visit, _ = await call(adapter, "2201", {"data": {
            "psn_no": psn_no, "insutype": "310", "begntime": "2026-11-01 09:00:00", "mdtrt_cert_type": "02",
            "mdtrt_cert_no": FAKE_CERT_NO, "ipt_otp_no": f"MZ{number}", "atddr_no": "D1", "dr_name": "测试医生",
            "dept_code": "A01", "dept_name": "内科", "caty": "A03"}}, **area)
        mdtrt_id = visit["output"]["data"]["mdtrt_id"]
        settled, _ = await call(adapter, "2207", {"data": {
            "psn_no": psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO, "med_type": "11",
            "medfee_sumamt": 100.0 + number, "psn_setlway": "01", "mdtrt_id": mdtrt_id, "chrg_bchno": f"CB{number}",
            "insutype": "310", "acct_used_flag": "1"}}, **area)
        log.append(("2207", settled["msgid"], settled["output"]))
        if number == count:
            info = settled["output"]["setlinfo"]
            cancelled, _ = await call(adapter, "2208", {"data": {
                "setl_id": info["setl_id"], "mdtrt_id": mdtrt_id, "psn_no": psn_no}}, **area)
            log.append(("2208", cancelled["msgid"], cancelled["output"]))
    return log


def day_of(records: dict[str, SettlementRecord]) -> date:
    return next(iter(records.values())).setl_date


async def test_a_clean_log_balances_without_detail_files(adapter: YibaoAdapter, centre: SimulatorServer) -> None:
    records = records_from_calls(await settle_several(adapter, 3))
    assert sum(1 for r in records.values() if r.cancelled) == 1
    reconciler = Reconciler(adapter.centre, adapter.sessions, adapter.default_operator)
    report = await reconciler.run(records, day_of(records), day_of(records))
    assert report.balanced and [g.key for g in report.groups] == [("310", "11", "440300")]
    assert report.groups[0].totals.fixmedins_setl_cnt == 3
    assert "9101" not in centre.simulator.state.calls


async def test_exactly_the_corrupted_settlements_are_found(adapter: YibaoAdapter, centre: SimulatorServer) -> None:
    records = records_from_calls(await settle_several(adapter, 5))
    active = sorted(setl_id for setl_id, r in records.items() if not r.cancelled)
    revoked, missing_locally, changed = active[0], active[1], active[2]
    centre.simulator.state.revoke(revoked)
    del records[missing_locally]
    records[changed] = dataclasses.replace(records[changed], medfee_sumamt=records[changed].medfee_sumamt + 1)
    phantom = dataclasses.replace(records[active[3]], setl_id="499999999", msgid="H44030400123202611010000009999")
    records[phantom.setl_id] = phantom

    reconciler = Reconciler(adapter.centre, adapter.sessions, adapter.default_operator)
    report = await reconciler.run(records, day_of(records), day_of(records))
    assert not report.balanced
    (group,) = report.groups
    assert "medfee_sumamt" in group.centre_says  # the centre's description of the difference
    found = {(d.kind, d.setl_id) for d in group.differences}
    assert found == {
        (DifferenceKind.CENTRE_REVOKED, revoked),
        (DifferenceKind.CENTRE_ONLY, missing_locally),
        (DifferenceKind.AMOUNT_DIFFERS, changed),
        (DifferenceKind.LOCAL_ONLY, "499999999"),
    }
    assert [wire.records[-1].detail["infno"] for wire in reconciler.wires] == ["3201", "9101", "3202", "9102"]


def test_the_detail_file_round_trips_through_the_result_layout() -> None:
    record = SettlementRecord("400000001", "300000001", "SIM1", "H44030400123202611010930150001", "310", "11",
                              "440300", date(2026, 11, 1), Decimal("100.00"), Decimal("60.00"), Decimal("40.00"),
                              Decimal("0.00"))
    assert b"PK" == detail_file([record], inner_name="d.txt")[:2]
    with pytest.raises(ValueError, match="not a zip"):
        parse_result_file(b"not a zip")
    assert differences({"400000001": record}, [])[0].kind == DifferenceKind.LOCAL_ONLY
