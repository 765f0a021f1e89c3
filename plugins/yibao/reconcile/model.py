"""Reconciliation (对账) data: the engine's settlements, the centre's totals and detail files.

Pure functions, no I/O: group settlements into the totals 3201 expects, write the 3202
detail file (tab-separated rows, zipped), read the centre's `result.txt`, and name every
settlement that differs. The centre's exact file conventions are labelled [U] in the spec:
the layouts here follow it (upload: setl_id, mdtrt_id, psn_no, medfee_sumamt,
fund_pay_sumamt, acct_pay, refd_setl_flag; result: psn_no, mdtrt_id, setl_id, msgid,
stmt_rslt, refd_setl_flag, memo, medfee_sumamt, fund_pay_sumamt, acct_pay).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

CENT = Decimal("0.01")
SETTLING = frozenset({"2207", "2304"})
CANCELLING = frozenset({"2208", "2305"})


def money(value: Any) -> Decimal:
    return Decimal(str(value if value not in (None, "") else 0)).quantize(CENT, ROUND_HALF_UP)


@dataclass
class SettlementRecord:
    """One settlement as the engine saw it succeed; `cancelled` once its 2208/2305 succeeded."""

    setl_id: str
    mdtrt_id: str
    psn_no: str
    msgid: str
    insutype: str
    clr_type: str
    setl_optins: str
    setl_date: date
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal
    cancelled: bool = False


def records_from_calls(calls: Iterable[tuple[str, str, dict[str, Any]]]) -> dict[str, SettlementRecord]:
    """Settlements by setl_id from successful calls `(infno, msgid, output)` in the order made."""
    records: dict[str, SettlementRecord] = {}
    for infno, msgid, output in calls:
        info = (output or {}).get("setlinfo") or {}
        setl_id = str(info.get("setl_id") or "")
        if not setl_id:
            continue
        if infno in SETTLING:
            records[setl_id] = SettlementRecord(
                setl_id=setl_id,
                mdtrt_id=str(info.get("mdtrt_id") or ""),
                psn_no=str(info.get("psn_no") or ""),
                msgid=msgid,
                insutype=str(info.get("insutype") or ""),
                clr_type=str(info.get("clr_type") or ""),
                setl_optins=str(info.get("clr_optins") or ""),
                setl_date=datetime.strptime(str(info["setl_time"])[:10], "%Y-%m-%d").date(),
                medfee_sumamt=money(info.get("medfee_sumamt")),
                fund_pay_sumamt=money(info.get("fund_pay_sumamt")),
                acct_pay=money(info.get("acct_pay")),
                psn_cash_pay=money(info.get("psn_cash_pay")),
            )
        elif infno in CANCELLING and setl_id in records:
            records[setl_id].cancelled = True
    return records


GroupKey = tuple[str, str, str]
"""(insutype, clr_type, setl_optins): one 3201 call."""


@dataclass(frozen=True)
class Totals:
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    cash_payamt: Decimal
    fixmedins_setl_cnt: int


def group_totals(records: Iterable[SettlementRecord], begin: date, end: date) -> dict[GroupKey, list[SettlementRecord]]:
    """Settlements still standing in [begin, end], grouped the way 3201 is called."""
    groups: dict[GroupKey, list[SettlementRecord]] = {}
    for record in records:
        if not record.cancelled and begin <= record.setl_date <= end:
            groups.setdefault((record.insutype, record.clr_type, record.setl_optins), []).append(record)
    return groups


def totals_of(records: list[SettlementRecord]) -> Totals:
    zero = Decimal("0.00")
    return Totals(
        medfee_sumamt=sum((r.medfee_sumamt for r in records), zero),
        fund_pay_sumamt=sum((r.fund_pay_sumamt for r in records), zero),
        acct_pay=sum((r.acct_pay for r in records), zero),
        cash_payamt=sum((r.psn_cash_pay for r in records), zero),
        fixmedins_setl_cnt=len(records),
    )


def detail_file(records: Iterable[SettlementRecord], *, inner_name: str) -> bytes:
    """The 3202 upload: one tab-separated row per settlement, zipped."""
    lines = [
        "\t".join([r.setl_id, r.mdtrt_id, r.psn_no, f"{r.medfee_sumamt}", f"{r.fund_pay_sumamt}", f"{r.acct_pay}",
                   "1" if r.cancelled else "0"])
        for r in records
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(inner_name, "\n".join(lines) + "\n")
    return buffer.getvalue()


@dataclass(frozen=True)
class ResultRow:
    psn_no: str
    mdtrt_id: str
    setl_id: str
    msgid: str
    stmt_rslt: str
    refd_setl_flag: str
    memo: str
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal


def parse_result_file(content: bytes) -> list[ResultRow]:
    """Rows of `result.txt` inside the zip 9102 returned; ValueError when it is not one."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "result.txt"] or archive.namelist()
            text = archive.read(names[0]).decode("utf-8")
    except (zipfile.BadZipFile, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"the 3202 result is not a zip with result.txt: {exc}") from exc
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) < 10:
            raise ValueError(f"result.txt line {number}: expected 10 tab-separated columns, got {len(cells)}")
        psn_no, mdtrt_id, setl_id, msgid, stmt_rslt, refd_setl_flag, memo = cells[:7]
        rows.append(ResultRow(psn_no, mdtrt_id, setl_id, msgid, stmt_rslt, refd_setl_flag, memo,
                              money(cells[7]), money(cells[8]), money(cells[9])))
    return rows


class DifferenceKind(StrEnum):
    CENTRE_ONLY = "centre_only"  # the centre has it, the engine does not
    LOCAL_ONLY = "local_only"  # the engine has it, the centre does not
    CENTRE_REVOKED = "centre_revoked"  # revoked at the centre, still settled locally
    AMOUNT_DIFFERS = "amount_differs"
    HIS_COUNTS_REVOKED = "his_counts_revoked"  # HIS still counts a settlement revoked or cancelled
    HIS_ONLY = "his_only"  # in the HIS ledger, never settled through the engine
    HIS_MISSING = "his_missing"  # settled, but not (or no longer) in the HIS ledger
    HIS_AMOUNT_DIFFERS = "his_amount_differs"


@dataclass(frozen=True)
class Difference:
    kind: DifferenceKind
    setl_id: str
    mdtrt_id: str
    psn_no: str
    local: SettlementRecord | None
    centre: ResultRow | None
    note: str = ""


def differences(local: dict[str, SettlementRecord], rows: list[ResultRow]) -> list[Difference]:
    """Every settlement on which the engine's log and the centre's result file disagree."""
    found: list[Difference] = []
    seen: set[str] = set()
    for row in rows:
        seen.add(row.setl_id)
        mine = local.get(row.setl_id)
        if mine is None or mine.cancelled:
            if row.refd_setl_flag != "1":
                note = "cancelled in the engine's log, still settled at the centre" if mine else row.memo
                found.append(_difference(DifferenceKind.CENTRE_ONLY, row.setl_id, mine, row, note))
            continue
        if row.refd_setl_flag == "1":
            found.append(_difference(DifferenceKind.CENTRE_REVOKED, row.setl_id, mine, row, row.memo))
        elif (row.medfee_sumamt, row.fund_pay_sumamt, row.acct_pay) != (
            mine.medfee_sumamt, mine.fund_pay_sumamt, mine.acct_pay
        ):
            note = (f"medfee {mine.medfee_sumamt}/{row.medfee_sumamt}, fund {mine.fund_pay_sumamt}/"
                    f"{row.fund_pay_sumamt}, acct {mine.acct_pay}/{row.acct_pay} (engine/centre)")
            found.append(_difference(DifferenceKind.AMOUNT_DIFFERS, row.setl_id, mine, row, note))
        elif row.stmt_rslt == "1" and not row.msgid:
            found.append(_difference(DifferenceKind.LOCAL_ONLY, row.setl_id, mine, row, row.memo))
    for setl_id, mine in local.items():
        if setl_id not in seen and not mine.cancelled:
            found.append(_difference(DifferenceKind.LOCAL_ONLY, setl_id, mine, None, "not in the centre's result"))
    return found


def _difference(
    kind: DifferenceKind, setl_id: str, mine: SettlementRecord | None, row: ResultRow | None, note: str
) -> Difference:
    return Difference(
        kind=kind,
        setl_id=setl_id,
        mdtrt_id=mine.mdtrt_id if mine else (row.mdtrt_id if row else ""),
        psn_no=mine.psn_no if mine else (row.psn_no if row else ""),
        local=mine,
        centre=row,
        note=note,
    )
