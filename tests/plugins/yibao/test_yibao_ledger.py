"""Comparing the HIS ledger export with the engine's log and the centre's verdicts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import ConfigError
from plugins.yibao.reconcile import (
    DifferenceKind,
    SettlementRecord,
    ledger_differences,
    read_his_ledger,
)


def record(setl_id: str, amount: str = "100.00", *, cancelled: bool = False) -> SettlementRecord:
    return SettlementRecord(setl_id, "300000001", "SIM1", "H44030400123202611010930150001", "310", "11", "440300",
                            date(2026, 11, 1), Decimal(amount), Decimal("60.00"), Decimal("40.00"), Decimal("0.00"),
                            cancelled=cancelled)


def test_every_disagreement_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text("setl_id,medfee_sumamt,status,cashier\n"
                    "400000001,100.00,settled,0153\n"   # revoked at the centre
                    "400000002,100.00,settled,0153\n"   # cancelled through the engine
                    "400000003,99.00,settled,0153\n"    # amount differs
                    "400000004,100.00,settled,0153\n"   # engine never saw it
                    "400000006,100.00,1,0153\n", encoding="utf-8")  # agrees
    engine = {r.setl_id: r for r in [record("400000001"), record("400000002", cancelled=True), record("400000003"),
                                     record("400000005"), record("400000006")]}
    found = {(d.kind, d.setl_id) for d in ledger_differences(read_his_ledger(path), engine, {"400000001"})}
    assert found == {
        (DifferenceKind.HIS_COUNTS_REVOKED, "400000001"),
        (DifferenceKind.HIS_COUNTS_REVOKED, "400000002"),
        (DifferenceKind.HIS_AMOUNT_DIFFERS, "400000003"),
        (DifferenceKind.HIS_ONLY, "400000004"),
        (DifferenceKind.HIS_MISSING, "400000005"),
    }


def test_a_bad_ledger_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    path.write_text("setl_id,medfee_sumamt,status\n1,abc,settled\n2,1.00,paid\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_his_ledger(path)
    assert caught.value.problems == [f"{path}:2: medfee_sumamt 'abc' is not a number",
                                     f"{path}:3: status 'paid' is neither settled nor cancelled"]
    path.write_text("setl_id,amount\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="lacks column"):
        read_his_ledger(path)
