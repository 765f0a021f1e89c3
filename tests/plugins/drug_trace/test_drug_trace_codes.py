"""Trace-code capture checks: shape, mapped product prefix, and the sale ledger."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.errors import ConfigError, InputError
from plugins.drug_trace.codes import DEFAULT_PATTERN, CodeRules, ProductMap
from plugins.drug_trace.ledger import SaleLedger
from tests.plugins.drug_trace.trace_data import (
    AMOXICILLIN_CASE_PREFIX,
    AMOXICILLIN_CODE,
    AMOXICILLIN_PREFIX,
    IBUPROFEN_PREFIX,
    code,
    write_mapping,
)


@pytest.fixture
def rules(tmp_path: Path) -> CodeRules:
    return CodeRules(re.compile(DEFAULT_PATTERN), ProductMap.load(write_mapping(tmp_path)))


def test_codes_of_one_item_map_to_its_catalogue_code(rules: CodeRules) -> None:
    codes = [code(AMOXICILLIN_PREFIX, 1), code(AMOXICILLIN_CASE_PREFIX, 2)]
    assert rules.check(codes, field="trace_codes") == (codes, AMOXICILLIN_CODE)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("8123457000000000001", "not a trace code"),  # 19 digits
        ("71234570000000000001", "not a trace code"),  # does not start with 8
        ("8123457000000000000A", "not a trace code"),
        ("81111110000000000001", "not in the mapping table"),
    ],
)
def test_a_bad_code_is_named_by_its_position(rules: CodeRules, bad: str, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        rules.check([code(AMOXICILLIN_PREFIX, 1), bad], field="trace_codes")
    assert caught.value.field == "trace_codes[1]" and caught.value.party == "his"
    assert reason in caught.value.reason


def test_codes_of_two_catalogue_items_in_one_record_are_refused(rules: CodeRules) -> None:
    with pytest.raises(InputError) as caught:
        rules.check([code(AMOXICILLIN_PREFIX, 1), code(IBUPROFEN_PREFIX, 1)], field="trace_codes")
    assert caught.value.field == "trace_codes"


def test_the_same_code_twice_and_an_empty_list_are_refused(rules: CodeRules) -> None:
    with pytest.raises(InputError, match=r"trace_codes\[1\]"):
        rules.check([code(AMOXICILLIN_PREFIX, 1)] * 2, field="trace_codes")
    with pytest.raises(InputError, match="non-empty"):
        rules.check([], field="trace_codes")


def test_another_code_format_is_configured_by_pattern(tmp_path: Path) -> None:
    gs1 = CodeRules(re.compile(r"^01\d{14}21\w{1,20}$"), ProductMap({"0106901": "X0001"}))
    assert gs1.check(["010690123456789021ABC123"], field="codes") == (["010690123456789021ABC123"], "X0001")


def test_a_malformed_mapping_table_is_a_config_error(tmp_path: Path) -> None:
    table = tmp_path / "map.csv"
    table.write_text("trace_prefix,med_list_codg\n812345,X1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2"):
        ProductMap.load(table)
    table.write_text("trace_prefix,med_list_codg\n8123456,X1\n8123456,X2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapped twice"):
        ProductMap.load(table)
    with pytest.raises(ConfigError):
        ProductMap.load(tmp_path / "missing.csv")


def test_a_code_sold_and_not_returned_cannot_be_sold_again(tmp_path: Path) -> None:
    ledger = SaleLedger(tmp_path / "ledger.sqlite")
    first, second = code(AMOXICILLIN_PREFIX, 1), code(AMOXICILLIN_PREFIX, 2)
    try:
        ledger.sell([first], "sale:A", fields=["trace_codes[0]"])
        ledger.sell([first], "sale:A", fields=["trace_codes[0]"])  # the same document built again
        with pytest.raises(InputError) as caught:
            ledger.sell([second, first], "sale:B", fields=["trace_codes[0]", "trace_codes[1]"])
        assert caught.value.field == "trace_codes[1]" and "sale:A" in caught.value.reason
        ledger.sell([second], "sale:B", fields=["trace_codes[0]"])  # the refused call recorded nothing
        ledger.take_back([first], "return:R", fields=["trace_codes[0]"])
        ledger.sell([first], "sale:C", fields=["trace_codes[0]"])
    finally:
        ledger.close()


def test_a_return_of_a_code_never_sold_or_already_back_is_refused(tmp_path: Path) -> None:
    ledger = SaleLedger(tmp_path / "ledger.sqlite")
    sold = code(AMOXICILLIN_PREFIX, 1)
    try:
        with pytest.raises(InputError, match="never sold"):
            ledger.take_back([sold], "return:R", fields=["trace_codes[0]"])
        ledger.sell([sold], "sale:A", fields=["trace_codes[0]"])
        ledger.take_back([sold], "return:R", fields=["trace_codes[0]"])
        with pytest.raises(InputError, match="returned"):
            ledger.take_back([sold], "return:S", fields=["trace_codes[0]"])
    finally:
        ledger.close()


def test_the_ledger_survives_a_restart(tmp_path: Path) -> None:
    sold = code(AMOXICILLIN_PREFIX, 1)
    ledger = SaleLedger(tmp_path / "ledger.sqlite")
    ledger.sell([sold], "sale:A", fields=["trace_codes[0]"])
    ledger.close()
    reopened = SaleLedger(tmp_path / "ledger.sqlite")
    try:
        with pytest.raises(InputError):
            reopened.sell([sold], "sale:B", fields=["trace_codes[0]"])
    finally:
        reopened.close()
