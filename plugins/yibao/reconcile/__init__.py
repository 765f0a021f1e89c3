"""Reconciliation (对账): totals (3201) and details (9101 → 3202 → 9102) against the engine's log."""

from plugins.yibao.reconcile.ledger import LedgerRow, ledger_differences, read_his_ledger
from plugins.yibao.reconcile.model import (
    Difference,
    DifferenceKind,
    ResultRow,
    SettlementRecord,
    Totals,
    detail_file,
    differences,
    group_totals,
    parse_result_file,
    records_from_calls,
    totals_of,
)
from plugins.yibao.reconcile.run import GroupResult, Reconciler, ReconcileReport

__all__ = [
    "Difference",
    "DifferenceKind",
    "GroupResult",
    "LedgerRow",
    "ReconcileReport",
    "Reconciler",
    "ResultRow",
    "SettlementRecord",
    "Totals",
    "detail_file",
    "differences",
    "group_totals",
    "ledger_differences",
    "parse_result_file",
    "read_his_ledger",
    "records_from_calls",
    "totals_of",
]
