"""Every catalogued transaction through the adapter against the simulated centre, in a
realistic order: person, visit, fees, settlement, cancellation, inpatient, reconciliation,
inventory. The simulator keeps state, so each step depends on the previous ones."""

from __future__ import annotations

import base64
import io
import zipfile

import pytest

from plugins.yibao.adapter import YibaoAdapter
from plugins.yibao.simulator import SimulatorServer
from plugins.yibao.simulator.handlers import HANDLERS
from plugins.yibao.transactions import catalogue
from tests.plugins.yibao.yibao_calls import FAKE_CERT_NO, FIXMEDINS_CODE, call

TODAY_FEE_TIME = "2026-11-01 09:10:00"


def fee_rows(psn_no: str, mdtrt_id: str, serials: list[str], *, inpatient: bool = False) -> list[dict[str, object]]:
    rows = []
    for serial in serials:
        row: dict[str, object] = {
            "feedetl_sn": serial, "mdtrt_id": mdtrt_id, "psn_no": psn_no, "fee_ocur_time": TODAY_FEE_TIME,
            "med_list_codg": "XJ01CAA040A001010104463", "medins_list_codg": "YP000123", "det_item_fee_sumamt": 25.0,
            "cnt": 2.0, "pric": 12.5, "bilg_dept_codg": "A01", "bilg_dept_name": "内科", "bilg_dr_codg": "D001",
            "bilg_dr_name": "测试医生"}
        row.update({"med_type": "21"} if inpatient else {"chrg_bchno": "CB0001"})
        rows.append(row)
    return rows


def drug(extra: dict[str, object]) -> dict[str, object]:
    return {"med_list_codg": "XJ01CAA040A001010104463", "fixmedins_hilist_id": "YP000123",
            "fixmedins_hilist_name": "阿莫西林胶囊", "fixmedins_bchno": "B20261101-0007", "rx_flag": "1", **extra}


def zipped(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


async def test_every_catalogued_transaction_round_trips(adapter: YibaoAdapter, centre: SimulatorServer) -> None:
    person, _ = await call(adapter, "1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO}})
    psn_no = person["output"]["baseinfo"]["psn_no"]
    area = {"insuplc_admdvs": person["output"]["insuinfo"][0]["insuplc_admdvs"]}
    cert = {"mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO}

    async def visit() -> str:
        reply, _ = await call(adapter, "2201", {"data": {
            "psn_no": psn_no, "insutype": "310", "begntime": "2026-11-01 09:00:00", **cert, "ipt_otp_no": "MZ0001",
            "atddr_no": "D001", "dr_name": "测试医生", "dept_code": "A01", "dept_name": "内科", "caty": "A03"}}, **area)
        return str(reply["output"]["data"]["mdtrt_id"])

    # outpatient: visit, diagnosis, fees (uploaded, withdrawn, uploaded again), settle, cancel
    mdtrt_id = await visit()
    info = {"mdtrtinfo": {"mdtrt_id": mdtrt_id, "psn_no": psn_no, "med_type": "11", "begntime": "2026-11-01 09:00:00"},
            "diseinfo": [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J06.900",
                          "diag_name": "急性上呼吸道感染"}]}
    await call(adapter, "2203", info, **area)
    await call(adapter, "2203A", info, **area)
    fees, _ = await call(adapter, "2204", {"feedetail": fee_rows(psn_no, mdtrt_id, ["F1", "F2"])}, **area)
    assert [row["feedetl_sn"] for row in fees["output"]["result"]] == ["F1", "F2"]
    await call(adapter, "2205", {"data": {"mdtrt_id": mdtrt_id, "chrg_bchno": "0000", "psn_no": psn_no}}, **area)
    await call(adapter, "2204", {"feedetail": fee_rows(psn_no, mdtrt_id, ["F1", "F2"])}, **area)
    settle = {"psn_no": psn_no, **cert, "med_type": "11", "medfee_sumamt": 50.0, "psn_setlway": "01",
              "mdtrt_id": mdtrt_id, "chrg_bchno": "CB0001", "insutype": "310", "acct_used_flag": "1"}
    pre, _ = await call(adapter, "2206", {"data": settle}, **area)
    assert pre["output"]["setlinfo"]["setl_id"] is None
    done, _ = await call(adapter, "2207", {"data": settle}, **area)
    setl_id = done["output"]["setlinfo"]["setl_id"]
    assert done["output"]["setlinfo"]["fund_pay_sumamt"] == pre["output"]["setlinfo"]["fund_pay_sumamt"]
    undo = {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no}
    undone, _ = await call(adapter, "2208", {"data": undo}, **area)
    assert undone["output"]["setlinfo"]["medfee_sumamt"] == -50.0
    await call(adapter, "2202", {"data": {"psn_no": psn_no, "mdtrt_id": mdtrt_id, "ipt_otp_no": "MZ0001"}}, **area)

    # HIS itself reverses a settlement it could not finish (2601)
    second_visit = await visit()
    kept, _ = await call(adapter, "2207", {"data": {**settle, "mdtrt_id": second_visit}}, **area)
    await call(adapter, "2601", {"data": {"psn_no": psn_no, "omsgid": kept["msgid"], "oinfno": "2207"}}, **area)
    assert centre.simulator.state.settlements[kept["output"]["setlinfo"]["setl_id"]].status == "reversed"

    # inpatient: admission, fees, withdraw one, discharge, pre-settle, settle, cancel, settle again
    diagnosis = [{"diag_type": "1", "diag_srt_no": "1", "diag_code": "J18.900", "diag_name": "肺炎"}]
    admitted, _ = await call(adapter, "2401", {"mdtrtinfo": {"psn_no": psn_no, "insutype": "310", **cert},
                                               "diseinfo": diagnosis}, **area)
    ward = str(admitted["output"]["result"]["mdtrt_id"])
    assert admitted["output"]["result"]["psn_no"] == psn_no
    await call(adapter, "2301", {"feedetail": fee_rows(psn_no, ward, ["Z1", "Z2"], inpatient=True)}, **area)
    await call(adapter, "2302", {"data": [{"feedetl_sn": "Z2", "mdtrt_id": ward, "psn_no": psn_no}]}, **area)
    await call(adapter, "2402", {"dscginfo": {"mdtrt_id": ward, "psn_no": psn_no}, "diseinfo": diagnosis}, **area)
    assert centre.simulator.state.visits[ward]["status"] == "discharged"
    stay = {"psn_no": psn_no, **cert, "medfee_sumamt": 25.0, "psn_setlway": "01", "mdtrt_id": ward,
            "acct_used_flag": "0", "insutype": "310", "mid_setl_flag": "0"}
    await call(adapter, "2303", {"data": stay}, **area)
    inpatient, _ = await call(adapter, "2304", {"data": stay}, **area)
    inpatient_id = inpatient["output"]["setlinfo"]["setl_id"]
    await call(adapter, "2305", {"data": {"mdtrt_id": ward, "setl_id": inpatient_id, "psn_no": psn_no}}, **area)
    final, _ = await call(adapter, "2304", {"data": stay}, **area)
    final_info = final["output"]["setlinfo"]
    assert final_info["acct_pay"] == 0.0 and final_info["clr_type"] == "21"

    # reconciliation: totals, then details through a file upload and download
    settled_day = final_info["setl_time"][:10]
    day = {"stmt_begndate": settled_day, "stmt_enddate": settled_day}
    totals, _ = await call(adapter, "3201", {"data": {
        "insutype": "310", "clr_type": "21", "setl_optins": "440300", **day, "medfee_sumamt": 25.0,
        "fund_pay_sumamt": final_info["fund_pay_sumamt"], "acct_pay": 0.0, "fixmedins_setl_cnt": 1}})
    assert totals["output"]["stmtinfo"]["stmt_rslt"] == "0"
    row = "\t".join([final_info["setl_id"], ward, psn_no, "25.00", f"{final_info['fund_pay_sumamt']:.2f}", "0.00", "0"])
    uploaded, _ = await call(adapter, "9101", {"fsUploadIn": {
        "in": base64.b64encode(zipped("detail.txt", row + "\n")).decode(),
        "filename": f"{FIXMEDINS_CODE}_detail.txt.zip", "fixmedins_code": FIXMEDINS_CODE}})
    details, _ = await call(adapter, "3202", {"data": {
        "setl_optins": "440300", "file_qury_no": uploaded["output"]["file_qury_no"], **day, "medfee_sumamt": 25.0,
        "fund_pay_sumamt": final_info["fund_pay_sumamt"], "cash_payamt": final_info["psn_cash_pay"],
        "fixmedins_setl_cnt": 1}})
    fileinfo = details["output"]["fileinfo"]
    result_zip, _ = await call(adapter, "9102", {"fsDownloadIn": {
        "file_qury_no": fileinfo["file_qury_no"], "filename": fileinfo["filename"], "fixmedins_code": FIXMEDINS_CODE}})
    assert isinstance(result_zip, bytes)
    with zipfile.ZipFile(io.BytesIO(result_zip)) as archive:
        lines = archive.read("result.txt").decode().splitlines()
    by_setl_id = {line.split("\t")[2]: line.split("\t") for line in lines}
    assert by_setl_id[final_info["setl_id"]][4] == "0"  # balanced

    # inventory family reused by drug_trace
    trace = {"drugtracinfo": [{"drug_trac_codg": "81234560000000012345"}]}
    await call(adapter, "3501", {"invinfo": drug({"invdate": "2026-11-01", "inv_cnt": 100.0, **trace})})
    await call(adapter, "3502", {"invinfo": drug({"inv_chg_type": "101", "pric": 12.5, "cnt": 10.0,
                                                  "inv_chg_time": TODAY_FEE_TIME, **trace})})
    await call(adapter, "3503", {"purcinfo": drug({})})
    await call(adapter, "3504", {"purcinfo": drug({})})
    sale = drug({"trdn_flag": "0", "sel_retn_cnt": 2.0, "sel_retn_time": TODAY_FEE_TIME,
                 "sel_retn_opter_name": "测试药师", "mdtrt_setl_type": "1", "setl_id": final_info["setl_id"],
                 "psn_no": psn_no, **trace})
    sold, _ = await call(adapter, "3505", {"selinfo": sale}, **area)
    assert sold["output"] == {"retRslt": "1", "msgRslt": "成功"}
    await call(adapter, "3506", {"selinfo": {**sale, "mdtrt_setl_type": None}}, **area)
    await call(adapter, "3507", {"data": {"fixmedins_bchno": "B20261101-0007", "inv_data_type": "1"}})
    stock = drug({"invdate": "2026-11-01", "inv_cnt": 100.0, **trace})
    stocked, _ = await call(adapter, "3501A", {"invinfoDetail": [stock, {**stock, "fixmedins_bchno": "B2"}]})
    sold_in_batch, _ = await call(adapter, "3505A", {"selinfoDetail": [sale, {**sale, "mdtrt_setl_type": "2"}]},
                                  **area)
    assert stocked["output"] == sold_in_batch["output"] == {"result": {"retRslt": "1", "msgRslt": "成功"}}
    assert [len(input_["selinfoDetail"]) for infno, input_ in centre.simulator.state.inventory if infno == "3505A"] \
        == [2]

    await adapter.aclose()
    assert set(centre.simulator.state.calls) == set(catalogue())


async def test_reconciliation_details_show_a_settlement_the_centre_revoked(
    adapter: YibaoAdapter, centre: SimulatorServer
) -> None:
    person, _ = await call(adapter, "1101", {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO}})
    psn_no = person["output"]["baseinfo"]["psn_no"]
    area = {"insuplc_admdvs": person["output"]["insuinfo"][0]["insuplc_admdvs"]}
    stay = {"psn_no": psn_no, "mdtrt_cert_type": "02", "mdtrt_cert_no": FAKE_CERT_NO, "medfee_sumamt": 80.0,
            "psn_setlway": "01", "mdtrt_id": "300999001", "acct_used_flag": "0", "insutype": "310",
            "mid_setl_flag": "0"}
    settled, _ = await call(adapter, "2304", {"data": stay}, **area)
    info = settled["output"]["setlinfo"]
    centre.simulator.state.revoke(info["setl_id"])
    day = {"stmt_begndate": info["setl_time"][:10], "stmt_enddate": info["setl_time"][:10]}
    totals, _ = await call(adapter, "3201", {"data": {
        "insutype": "310", "clr_type": "21", "setl_optins": "440300", **day, "medfee_sumamt": 80.0,
        "fund_pay_sumamt": info["fund_pay_sumamt"], "acct_pay": 0.0, "fixmedins_setl_cnt": 1}})
    assert totals["output"]["stmtinfo"]["stmt_rslt"] == "1"
    row = "\t".join([info["setl_id"], "300999001", psn_no, "80.00", f"{info['fund_pay_sumamt']:.2f}", "0.00", "0"])
    uploaded, _ = await call(adapter, "9101", {"fsUploadIn": {
        "in": base64.b64encode(zipped("d.txt", row)).decode(), "filename": "d.txt.zip",
        "fixmedins_code": FIXMEDINS_CODE}})
    details, _ = await call(adapter, "3202", {"data": {
        "setl_optins": "440300", "file_qury_no": uploaded["output"]["file_qury_no"], **day, "medfee_sumamt": 80.0,
        "fund_pay_sumamt": info["fund_pay_sumamt"], "cash_payamt": info["psn_cash_pay"], "fixmedins_setl_cnt": 1}})
    fileinfo = details["output"]["fileinfo"]
    result_zip, _ = await call(adapter, "9102", {"fsDownloadIn": {
        "file_qury_no": fileinfo["file_qury_no"], "filename": fileinfo["filename"], "fixmedins_code": FIXMEDINS_CODE}})
    with zipfile.ZipFile(io.BytesIO(result_zip)) as archive:
        (line,) = archive.read("result.txt").decode().splitlines()
    columns = line.split("\t")
    assert columns[2] == info["setl_id"] and columns[4] == "1" and "撤销" in columns[6]


@pytest.mark.parametrize("infno", sorted(catalogue()))
def test_every_catalogued_transaction_has_a_simulator_answer(infno: str) -> None:
    assert infno in HANDLERS or infno == "9102"
