"""The transaction catalogue and the checks made before anything is sent."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from plugins.yibao.transactions import InputProblems, catalogue, transaction, validate_input

REQUIRED_CODES = {"9001", "9002", "1101", "2201", "2202", "2203", "2204", "2205", "2206", "2207", "2208", "2301",
                  "2302", "2303", "2304", "2305", "2601", "3201", "3202", "9101", "9102", "3501", "3502", "3503",
                  "3504", "3505", "3506", "3507"}

SETTLE_INPUT = {"data": {"psn_no": "SIM00000000000000001", "mdtrt_cert_type": "02", "mdtrt_cert_no": "FAKE-CERT-0001",
                         "med_type": "11", "medfee_sumamt": 125.5, "psn_setlway": "01", "mdtrt_id": "300179916",
                         "chrg_bchno": "CB0001", "insutype": "310", "acct_used_flag": "1"}}


def test_catalogue_covers_the_issue_list() -> None:
    assert REQUIRED_CODES <= set(catalogue())


@pytest.mark.parametrize("infno", ["2207", "2208", "2304", "2305"])
def test_money_moving_calls_are_not_safe_to_repeat(infno: str) -> None:
    spec = transaction(infno)
    assert spec.moves_money and not spec.retry_safe and spec.reversal == "2601"


@pytest.mark.parametrize("infno", ["1101", "2206", "2303", "3201", "3202", "9102"])
def test_queries_are_safe_to_repeat(infno: str) -> None:
    assert transaction(infno).retry_safe and not transaction(infno).moves_money


def test_input_nodes_and_endpoints_follow_the_spec() -> None:
    assert transaction("9001").main_node == "signIn" and not transaction("9001").sign_in
    assert transaction("2204").main_node == "feedetail"
    assert transaction("3505").main_node == "selinfo"
    assert transaction("9101").endpoint == "upload" and transaction("9102").endpoint == "download"
    assert transaction("9001").endpoint == "sign_in" and transaction("9002").endpoint == "sign_out"
    assert [node.name for node in transaction("2401").nodes] == ["mdtrtinfo", "diseinfo"]
    assert [node.name for node in transaction("2402").nodes] == ["dscginfo", "diseinfo"]


def test_a_complete_settlement_input_passes() -> None:
    assert validate_input("2207", SETTLE_INPUT).infno == "2207"


def test_missing_psn_no_is_his_fault_and_named() -> None:
    data = {**SETTLE_INPUT["data"], "psn_no": ""}
    with pytest.raises(InputError) as caught:
        validate_input("2207", {"data": data})
    assert caught.value.field == "input.data.psn_no"
    assert caught.value.party == "his"
    assert "required" in caught.value.reason


def test_every_bad_field_is_named_at_once() -> None:
    data = {k: v for k, v in SETTLE_INPUT["data"].items() if k not in ("insutype", "mdtrt_id")}
    data["medfee_sumamt"] = "125.50"
    with pytest.raises(InputProblems) as caught:
        validate_input("2207", {"data": data})
    assert dict(caught.value.problems).keys() == {"input.data.medfee_sumamt", "input.data.mdtrt_id",
                                                   "input.data.insutype"}
    assert "must be a number" in dict(caught.value.problems)["input.data.medfee_sumamt"]


def test_list_rows_are_checked_by_index() -> None:
    with pytest.raises(InputProblems) as caught:
        validate_input("2204", {"feedetail": [{"feedetl_sn": "1"}, "not a row"]})
    fields = [path for path, _ in caught.value.problems]
    assert "input.feedetail[0].mdtrt_id" in fields and "input.feedetail[1]" in fields


def test_a_wrong_node_name_says_which_node_is_expected() -> None:
    with pytest.raises(InputProblems) as caught:
        validate_input("1101", {"date": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "FAKE"}})
    assert caught.value.problems[0][0] == "input.data"
    assert "'data'" in caught.value.problems[0][1]


def test_dates_and_times_have_the_spec_format() -> None:
    data = {"insutype": "310", "clr_type": "11", "setl_optins": "440300", "stmt_begndate": "2026/11/01",
            "stmt_enddate": "2026-11-01", "medfee_sumamt": 1.0, "fund_pay_sumamt": 1.0, "acct_pay": 0.0,
            "fixmedins_setl_cnt": 1.5}
    with pytest.raises(InputProblems) as caught:
        validate_input("3201", {"data": data})
    assert [path for path, _ in caught.value.problems] == ["input.data.stmt_begndate", "input.data.fixmedins_setl_cnt"]


def test_3505_needs_setl_id_for_an_insured_sale() -> None:
    sale = {"med_list_codg": "X", "fixmedins_hilist_id": "Y", "fixmedins_hilist_name": "阿莫西林胶囊",
            "fixmedins_bchno": "B1", "rx_flag": "1", "trdn_flag": "0", "sel_retn_cnt": 2.0,
            "sel_retn_time": "2026-11-01 09:40:00", "sel_retn_opter_name": "测试药师", "mdtrt_setl_type": "1"}
    with pytest.raises(InputProblems) as caught:
        validate_input("3505", {"selinfo": sale})
    assert caught.value.problems == [("input.selinfo.setl_id", "required when selinfo.mdtrt_setl_type is '1'")]
    assert validate_input("3505", {"selinfo": {**sale, "mdtrt_setl_type": "2"}}).infno == "3505"


def test_unknown_transaction_code_is_his_fault() -> None:
    with pytest.raises(InputError) as caught:
        transaction("9999")
    assert caught.value.field == "infno"


SALE = {"med_list_codg": "X", "fixmedins_hilist_id": "Y", "fixmedins_hilist_name": "阿莫西林胶囊",
        "fixmedins_bchno": "B1", "rx_flag": "1", "trdn_flag": "0", "sel_retn_cnt": 2.0,
        "sel_retn_time": "2026-11-01 09:40:00", "sel_retn_opter_name": "测试药师", "mdtrt_setl_type": "1",
        "setl_id": "400000001"}


def test_a_batch_sale_checks_every_row_as_a_single_sale() -> None:
    rows = [SALE, {**SALE, "setl_id": ""}, {**SALE, "sel_retn_cnt": "two"}, {**SALE, "mdtrt_setl_type": "2",
                                                                            "setl_id": None}]
    with pytest.raises(InputProblems) as caught:
        validate_input("3505A", {"selinfoDetail": rows})
    assert caught.value.problems == [
        ("input.selinfoDetail[2].sel_retn_cnt", "must be a number, got str 'two'"),
        ("input.selinfoDetail[1].setl_id", "required when selinfoDetail[].mdtrt_setl_type is '1'"),
    ]
    assert validate_input("3505A", {"selinfoDetail": [SALE, rows[3]]}).output == ("result",)


def test_a_batch_needs_its_list_node_with_rows() -> None:
    with pytest.raises(InputProblems) as caught:
        validate_input("3501A", {"invinfo": {}})
    assert caught.value.problems[0][0] == "input.invinfoDetail"
    with pytest.raises(InputProblems) as empty:
        validate_input("3501A", {"invinfoDetail": []})
    assert empty.value.problems == [("input.invinfoDetail", "must not be empty")]


def test_only_the_batch_variants_the_sources_name_are_catalogued() -> None:
    assert {"3501A", "3505A"} <= set(catalogue())
    assert not {"3502A", "3506A"} & set(catalogue())  # their list nodes are not known


def test_an_admission_needs_the_person() -> None:
    with pytest.raises(InputProblems) as caught:
        validate_input("2401", {"mdtrtinfo": {"insutype": "310"}})
    assert caught.value.problems == [("input.mdtrtinfo.psn_no", "required")]
    assert validate_input("2402", {"dscginfo": {"mdtrt_id": "300000001"}}).infno == "2402"
