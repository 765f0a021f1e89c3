"""The third book: the HIS ledger, so "HIS still counts a settlement the centre revoked" shows.

HIS exports its insurance settlements as CSV with a header row holding at least `setl_id`,
`medfee_sumamt` and `status` (`settled` or `cancelled`; `1`/`0` also accepted). Rows are
compared with the engine's log and with what the centre said in its 3202 result files.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from engine.errors import ConfigError
from plugins.yibao.reconcile.model import Difference, DifferenceKind, SettlementRecord, money

REQUIRED_COLUMNS = ("setl_id", "medfee_sumamt", "status")
_SETTLED = {"settled": True, "1": True, "cancelled": False, "0": False}


@dataclass(frozen=True)
class LedgerRow:
    setl_id: str
    medfee_sumamt: Decimal
    settled: bool


def read_his_ledger(path: Path) -> dict[str, LedgerRow]:
    """The HIS export by setl_id; ConfigError naming the file and line of every bad row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the HIS ledger: {exc.strerror or exc}"]) from exc
    reader = csv.DictReader(io.StringIO(text))
    missing = [name for name in REQUIRED_COLUMNS if name not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError([f"{path}: the HIS ledger lacks column(s) {', '.join(missing)}"])
    rows: dict[str, LedgerRow] = {}
    problems: list[str] = []
    for line, raw in enumerate(reader, start=2):
        status = (raw["status"] or "").strip().lower()
        try:
            amount = money(raw["medfee_sumamt"])
        except InvalidOperation:
            problems.append(f"{path}:{line}: medfee_sumamt {raw['medfee_sumamt']!r} is not a number")
            continue
        if status not in _SETTLED:
            problems.append(f"{path}:{line}: status {raw['status']!r} is neither settled nor cancelled")
            continue
        rows[raw["setl_id"].strip()] = LedgerRow(raw["setl_id"].strip(), amount, _SETTLED[status])
    if problems:
        raise ConfigError(problems)
    return rows


def ledger_differences(
    his: dict[str, LedgerRow], engine: dict[str, SettlementRecord], centre_revoked: set[str]
) -> list[Difference]:
    """Settlements on which the HIS ledger disagrees with the engine's log or the centre."""
    found: list[Difference] = []
    for setl_id, row in sorted(his.items()):
        mine = engine.get(setl_id)
        if row.settled and (setl_id in centre_revoked or (mine is not None and mine.cancelled)):
            where = "the centre revoked it" if setl_id in centre_revoked else "it was cancelled through the engine"
            found.append(_his(DifferenceKind.HIS_COUNTS_REVOKED, setl_id, mine, f"HIS still counts it; {where}"))
        elif mine is None:
            if row.settled:
                found.append(_his(DifferenceKind.HIS_ONLY, setl_id, None, "HIS counts it; the engine never settled it"))
        elif row.settled and row.medfee_sumamt != mine.medfee_sumamt:
            found.append(_his(DifferenceKind.HIS_AMOUNT_DIFFERS, setl_id, mine,
                              f"medfee HIS {row.medfee_sumamt}, engine {mine.medfee_sumamt}"))
    for setl_id, mine in sorted(engine.items()):
        if not mine.cancelled and setl_id not in centre_revoked and not (setl_id in his and his[setl_id].settled):
            reason = "settled at the centre; HIS does not count it"
            found.append(_his(DifferenceKind.HIS_MISSING, setl_id, mine, reason))
    return found


def _his(kind: DifferenceKind, setl_id: str, mine: SettlementRecord | None, note: str) -> Difference:
    return Difference(kind=kind, setl_id=setl_id, mdtrt_id=mine.mdtrt_id if mine else "",
                      psn_no=mine.psn_no if mine else "", local=mine, centre=None, note=note)
