"""One function per transaction: (state, envelope, now) → the `output` node, or CentreRefusal."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from plugins.yibao.simulator.state import CentreRefusal, CentreState, Settlement, money

Handler = Callable[[CentreState, dict[str, Any], datetime], Any]


def _node(envelope: dict[str, Any], name: str) -> Any:
    value = (envelope.get("input") or {}).get(name)
    if value is None:
        raise CentreRefusal(f"参数错误：缺少节点{name}")
    return value


def _required(record: dict[str, Any], *names: str) -> None:
    labels = {"mdtrt_cert_no": "就诊凭证编号", "mdtrt_cert_type": "就诊凭证类型", "psn_no": "人员编号",
              "mdtrt_id": "就诊ID", "setl_id": "结算ID", "omsgid": "原发送方报文ID"}
    for name in names:
        if record.get(name) in (None, ""):
            raise CentreRefusal(f"{labels.get(name, name)}不能为空")


def _amount(value: Decimal) -> float:
    return float(value)


def sign_in(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    node = _node(envelope, "signIn")
    _required(node, "opter_no")
    return {"signinoutb": {"sign_no": state.sign_in(node["opter_no"], now), "sign_time": f"{now:%Y-%m-%d %H:%M:%S}"}}


def sign_out(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    node = _node(envelope, "signOut")
    state.sign_ins.pop(str(node.get("sign_no")), None)
    return {"signoutoutb": {"sign_time": f"{now:%Y-%m-%d %H:%M:%S}"}}


def person_info(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    data = _node(envelope, "data")
    _required(data, "mdtrt_cert_type", "mdtrt_cert_no")
    person = state.person(str(data["mdtrt_cert_no"]))
    return {
        "baseinfo": {"psn_no": person.psn_no, "psn_cert_type": "01", "certno": person.certno,
                     "psn_name": person.psn_name, "gend": "1", "naty": "01", "brdy": "1985-01-01",
                     "age": 41.0, "exp_content": None},
        "insuinfo": [{"balc": _amount(person.balance), "insutype": "310", "psn_type": "1101",
                      "psn_insu_stas": "1", "psn_insu_date": "2008-01-01", "paus_insu_date": None,
                      "cvlserv_flag": "0", "insuplc_admdvs": person.insuplc_admdvs, "emp_name": "模拟单位"}],
        "idetinfo": [],
    }


def register(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    data = _node(envelope, "data")
    _required(data, "psn_no", "mdtrt_cert_no")
    state.person_by_psn_no(str(data["psn_no"]))
    mdtrt_id = f"{300000000 + state.next_serial()}"
    state.visits[mdtrt_id] = {"psn_no": data["psn_no"], "ipt_otp_no": data.get("ipt_otp_no"), "status": "open"}
    return {"data": {"mdtrt_id": mdtrt_id, "psn_no": data["psn_no"], "ipt_otp_no": data.get("ipt_otp_no")}}


def cancel_registration(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    data = _node(envelope, "data")
    visit = state.visits.get(str(data.get("mdtrt_id")))
    if visit is None:
        raise CentreRefusal("不存在该就诊信息")
    visit["status"] = "cancelled"
    return None


def admit(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    info = _node(envelope, "mdtrtinfo")
    _required(info, "psn_no")
    state.person_by_psn_no(str(info["psn_no"]))
    mdtrt_id = f"{300000000 + state.next_serial()}"
    state.visits[mdtrt_id] = {"psn_no": info["psn_no"], "inpatient": True, "info": info, "status": "open",
                              "diseinfo": (envelope.get("input") or {}).get("diseinfo") or []}
    return {"result": {"mdtrt_id": mdtrt_id, "psn_no": info["psn_no"]}}


def discharge(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    info = _node(envelope, "dscginfo")
    _required(info, "mdtrt_id")
    visit = _visit(state, info["mdtrt_id"])
    if not visit.get("inpatient"):
        raise CentreRefusal(f"该就诊不是住院就诊，不能办理出院：{info['mdtrt_id']}")
    visit.update(status="discharged", discharge=info)
    return None


def _visit(state: CentreState, mdtrt_id: Any) -> dict[str, Any]:
    visit = state.visits.get(str(mdtrt_id))
    if visit is None or visit["status"] != "open":
        raise CentreRefusal(f"不存在该就诊信息：{mdtrt_id}")
    return visit


def visit_info(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    info = _node(envelope, "mdtrtinfo")
    _visit(state, info.get("mdtrt_id"))["info"] = info
    return None


def upload_fees(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    rows = _node(envelope, "feedetail")
    results = []
    for row in rows:
        if envelope["infno"] == "2204":
            _visit(state, row.get("mdtrt_id"))
        fees = state.fees.setdefault(str(row["mdtrt_id"]), {})
        serial = str(row.get("feedetl_sn"))
        if serial in fees:
            raise CentreRefusal(f"费用明细流水号重复：{serial}")
        fees[serial] = row
        results.append({"feedetl_sn": serial, "det_item_fee_sumamt": row.get("det_item_fee_sumamt"),
                        "cnt": row.get("cnt"), "pric": row.get("pric"), "pric_uplmt_amt": row.get("pric"),
                        "selfpay_prop": 0, "fulamt_ownpay_amt": 0, "overlmt_amt": 0, "preselfpay_amt": 0,
                        "inscp_scp_amt": row.get("det_item_fee_sumamt"), "chrgitm_lv": "01",
                        "med_chrgitm_type": "09", "bas_medn_flag": "0", "hi_nego_drug_flag": "0",
                        "chld_medc_flag": "0", "list_sp_item_flag": "0", "lmt_used_flag": "0",
                        "drt_reim_flag": "0", "memo": None})
    return {"result": results}


def cancel_fees(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    data = _node(envelope, "data")
    for row in data if isinstance(data, list) else [data]:
        fees = state.fees.get(str(row.get("mdtrt_id")), {})
        serial = str(row.get("feedetl_sn") or row.get("chrg_bchno") or "0000")
        if serial == "0000":
            fees.clear()
        else:
            fees.pop(serial, None)
    return None


def settlement_output(settlement: Settlement, *, sign: int = 1) -> dict[str, Any]:
    def amount(value: Decimal) -> float:
        return _amount(value * sign)

    person_part = settlement.psn_part_amt
    return {
        "setlinfo": {
            "mdtrt_id": settlement.mdtrt_id, "setl_id": settlement.setl_id or None, "psn_no": settlement.psn_no,
            "insutype": settlement.insutype, "psn_type": "1101", "cvlserv_flag": "0",
            "setl_time": f"{settlement.setl_time:%Y-%m-%d %H:%M:%S}", "med_type": settlement.med_type,
            "medfee_sumamt": amount(settlement.medfee_sumamt), "fulamt_ownpay_amt": 0.0, "overlmt_selfpay": 0.0,
            "preselfpay_amt": 0.0, "inscp_scp_amt": amount(settlement.medfee_sumamt), "act_pay_dedc": 0.0,
            "hifp_pay": amount(settlement.fund_pay_sumamt), "pool_prop_selfpay": 0.4, "cvlserv_pay": 0.0,
            "hifes_pay": 0.0, "hifmi_pay": 0.0, "hifob_pay": 0.0, "maf_pay": 0.0, "oth_pay": 0.0,
            "fund_pay_sumamt": amount(settlement.fund_pay_sumamt), "psn_part_amt": amount(person_part),
            "acct_pay": amount(settlement.acct_pay), "psn_cash_pay": amount(settlement.psn_cash_pay),
            "hosp_part_amt": 0.0, "acct_mulaid_pay": 0.0, "medins_setl_id": settlement.msgid,
            "clr_optins": settlement.setl_optins, "clr_way": "1", "clr_type": settlement.clr_type,
        },
        "setldetail": [{"fund_pay_type": "310100", "inscp_scp_amt": amount(settlement.medfee_sumamt),
                        "crt_payb_lmt_amt": None, "fund_payamt": amount(settlement.fund_pay_sumamt),
                        "fund_pay_type_name": "职工基本医疗保险统筹基金", "setl_proc_info": ""}],
    }


def _settle(commit: bool) -> Handler:
    def handle(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
        data = _node(envelope, "data")
        _required(data, "psn_no", "mdtrt_cert_no", "mdtrt_id", "medfee_sumamt")
        if envelope["infno"] in ("2206", "2207"):
            _visit(state, data["mdtrt_id"])
        settlement = state.settle(infno=envelope["infno"], msgid=envelope["msgid"], data=data, now=now, commit=commit)
        return settlement_output(settlement)

    return handle


def cancel_settlement(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    data = _node(envelope, "data")
    _required(data, "setl_id", "mdtrt_id", "psn_no")
    return settlement_output(state.cancel(str(data["setl_id"]), str(data["mdtrt_id"])), sign=-1)


def reverse(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    data = _node(envelope, "data")
    _required(data, "omsgid")
    state.reverse(str(data["omsgid"]))
    return None


def totals(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    data = _node(envelope, "data")
    begin, end = date.fromisoformat(data["stmt_begndate"]), date.fromisoformat(data["stmt_enddate"])
    rows = state.active_settlements(begin, end, insutype=data.get("insutype"), clr_type=data.get("clr_type"))
    centre = {
        "medfee_sumamt": sum((s.medfee_sumamt for s in rows), Decimal("0.00")),
        "fund_pay_sumamt": sum((s.fund_pay_sumamt for s in rows), Decimal("0.00")),
        "acct_pay": sum((s.acct_pay for s in rows), Decimal("0.00")),
    }
    differences = [f"{name}：中心{value}，机构{money(data.get(name))}" for name, value in centre.items()
                   if value != money(data.get(name))]
    if len(rows) != int(data.get("fixmedins_setl_cnt") or 0):
        differences.append(f"结算笔数：中心{len(rows)}，机构{data.get('fixmedins_setl_cnt')}")
    return {"stmtinfo": {"setl_optins": data.get("setl_optins"), "stmt_rslt": "1" if differences else "0",
                         "stmt_rslt_dscr": "；".join(differences) or "对账平"}}


def upload(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    node = _node(envelope, "fsUploadIn")
    content = base64.b64decode(str(node.get("in") or ""))
    file_qury_no = state.store_file(str(node.get("filename")), content, now)
    return {"file_qury_no": file_qury_no, "filename": node.get("filename"),
            "dld_endtime": f"{now + timedelta(days=7):%Y-%m-%d} 23:59:59"}


def details(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    """3202: compare the uploaded rows with the centre's settlements; result.txt as a zip."""
    data = _node(envelope, "data")
    stored = state.files.get(str(data.get("file_qury_no")))
    if stored is None:
        raise CentreRefusal("文件查询号不存在")
    begin, end = date.fromisoformat(data["stmt_begndate"]), date.fromisoformat(data["stmt_enddate"])
    hospital = _uploaded_rows(stored[1])
    centre = {s.setl_id: s for s in state.settlements.values() if begin <= s.setl_date <= end}
    lines = []
    for setl_id in sorted(set(hospital) | set(centre)):
        ours, theirs = centre.get(setl_id), hospital.get(setl_id)
        if ours is not None and ours.status != "active" and theirs is None:
            continue  # cancelled at both ends
        lines.append("\t".join(_result_row(setl_id, ours, theirs)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("result.txt", "\n".join(lines) + "\n")
    filename = f"stmt_result_{begin:%Y%m%d}.zip"
    file_qury_no = state.store_file(filename, buffer.getvalue(), now)
    return {"fileinfo": {"file_qury_no": file_qury_no, "filename": filename,
                         "dld_endtime": f"{now + timedelta(days=7):%Y-%m-%d} 23:59:59"}}


def _result_row(setl_id: str, ours: Settlement | None, theirs: dict[str, str] | None) -> list[str]:
    """One result.txt row: psn_no, mdtrt_id, setl_id, msgid, stmt_rslt, refd_setl_flag, memo, amounts."""
    result, memo = _compare(ours, theirs)
    if ours is not None:
        refunded = "0" if ours.status == "active" else "1"
        return [ours.psn_no, ours.mdtrt_id, setl_id, ours.msgid, result, refunded, memo,
                str(ours.medfee_sumamt), str(ours.fund_pay_sumamt), str(ours.acct_pay)]
    assert theirs is not None
    return [theirs["psn_no"], theirs["mdtrt_id"], setl_id, "", result, "0", memo,
            theirs["medfee_sumamt"], theirs["fund_pay_sumamt"], theirs["acct_pay"]]


def _uploaded_rows(content: bytes) -> dict[str, dict[str, str]]:
    columns = ("setl_id", "mdtrt_id", "psn_no", "medfee_sumamt", "fund_pay_sumamt", "acct_pay", "refd_setl_flag")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        text = archive.read(archive.namelist()[0]).decode("utf-8")
    rows = [dict(zip(columns, line.split("\t"), strict=False)) for line in text.splitlines() if line.strip()]
    return {row["setl_id"]: row for row in rows}


def _compare(centre: Settlement | None, hospital: dict[str, str] | None) -> tuple[str, str]:
    if centre is None:
        return "1", "中心无此结算"
    if hospital is None:
        return "1", "机构无此结算"
    if centre.status != "active":
        return "1", f"中心已撤销（{centre.status}）"
    if (money(hospital["medfee_sumamt"]) != centre.medfee_sumamt
            or money(hospital["fund_pay_sumamt"]) != centre.fund_pay_sumamt):
        return "1", "金额不一致"
    return "0", "一致"


def inventory(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
    state.inventory.append((envelope["infno"], dict(envelope.get("input") or {})))
    return {"retRslt": "1", "msgRslt": "成功"}


def inventory_batch(node: str) -> Handler:
    """3501A/3505A: the list node of rows kept as sent; the answer nests under `result`."""

    def handle(state: CentreState, envelope: dict[str, Any], now: datetime) -> Any:
        rows = _node(envelope, node)
        if not isinstance(rows, list) or not rows:
            raise CentreRefusal(f"参数错误：{node}不能为空")
        state.inventory.append((envelope["infno"], dict(envelope.get("input") or {})))
        return {"result": {"retRslt": "1", "msgRslt": "成功"}}

    return handle


HANDLERS: dict[str, Handler] = {
    "9001": sign_in, "9002": sign_out, "1101": person_info, "2201": register, "2202": cancel_registration,
    "2203": visit_info, "2203A": visit_info, "2204": upload_fees, "2205": cancel_fees, "2206": _settle(False),
    "2207": _settle(True), "2208": cancel_settlement, "2301": upload_fees, "2302": cancel_fees,
    "2303": _settle(False), "2304": _settle(True), "2305": cancel_settlement, "2601": reverse,
    "2401": admit, "2402": discharge, "3201": totals, "3202": details, "9101": upload,
    "3501A": inventory_batch("invinfoDetail"), "3505A": inventory_batch("selinfoDetail"),
    **{infno: inventory for infno in ("3501", "3502", "3503", "3504", "3505", "3506", "3507")},
}
