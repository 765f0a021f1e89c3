"""Run a reconciliation against the centre: 3201 per group, then 9101 → 3202 → 9102 where unbalanced.

Every call goes through the same CentreClient and sign-in as settlements do, each on its
own wire (`Reconciler.wires`), so a reconciliation can be stored and shown like a message.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from engine.adapters.base import Wire
from plugins.yibao.centre import CentreClient, CentreReply
from plugins.yibao.envelope import Operator
from plugins.yibao.reconcile.model import (
    Difference,
    GroupKey,
    ResultRow,
    SettlementRecord,
    Totals,
    detail_file,
    differences,
    group_totals,
    parse_result_file,
    totals_of,
)
from plugins.yibao.session import SignInSessions


@dataclass
class GroupResult:
    key: GroupKey
    totals: Totals
    balanced: bool
    centre_says: str
    differences: list[Difference] = field(default_factory=list)
    centre_rows: list[ResultRow] = field(default_factory=list)


@dataclass
class ReconcileReport:
    begin: date
    end: date
    groups: list[GroupResult]

    his_differences: list[Difference] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return all(group.balanced for group in self.groups) and not self.his_differences

    @property
    def centre_revoked(self) -> set[str]:
        """Settlements the centre's result files mark as revoked or cancelled."""
        return {row.setl_id for group in self.groups for row in group.centre_rows if row.refd_setl_flag == "1"}


class Reconciler:
    def __init__(self, centre: CentreClient, sessions: SignInSessions, operator: Operator) -> None:
        self.centre = centre
        self.sessions = sessions
        self.operator = operator
        self.wires: list[Wire] = []

    async def run(
        self,
        records: dict[str, SettlementRecord],
        begin: date,
        end: date,
        *,
        insutype: str | None = None,
        clr_type: str | None = None,
    ) -> ReconcileReport:
        groups = group_totals(records.values(), begin, end)
        results = []
        for key, members in sorted(groups.items()):
            if (insutype and key[0] != insutype) or (clr_type and key[1] != clr_type):
                continue
            results.append(await self._group(key, members, records, begin, end))
        return ReconcileReport(begin, end, results)

    async def _group(
        self, key: GroupKey, members: list[SettlementRecord], records: dict[str, SettlementRecord],
        begin: date, end: date,
    ) -> GroupResult:
        insutype, clr_type, setl_optins = key
        totals = totals_of(members)
        period = {"stmt_begndate": f"{begin:%Y-%m-%d}", "stmt_enddate": f"{end:%Y-%m-%d}"}
        reply = await self._call("3201", {"data": {
            "insutype": insutype, "clr_type": clr_type, "setl_optins": setl_optins, **period,
            "medfee_sumamt": float(totals.medfee_sumamt), "fund_pay_sumamt": float(totals.fund_pay_sumamt),
            "acct_pay": float(totals.acct_pay), "fixmedins_setl_cnt": totals.fixmedins_setl_cnt}})
        statement = (reply.output or {}).get("stmtinfo") or {}
        balanced = str(statement.get("stmt_rslt")) == "0"
        result = GroupResult(key, totals, balanced, str(statement.get("stmt_rslt_dscr") or ""))
        if result.balanced:
            return result
        in_group = {
            setl_id: record for setl_id, record in records.items()
            if (record.insutype, record.clr_type, record.setl_optins) == key and begin <= record.setl_date <= end
        }
        code = self.centre.deployment.fixmedins_code
        filename = f"{code}_{begin:%Y%m%d}_{end:%Y%m%d}_{insutype}_{clr_type}.txt"
        uploaded = await self._call("9101", {"fsUploadIn": {
            "in": base64.b64encode(detail_file(in_group.values(), inner_name=filename)).decode(),
            "filename": f"{filename}.zip", "fixmedins_code": code}})
        details = await self._call("3202", {"data": {
            "setl_optins": setl_optins, "file_qury_no": uploaded.output["file_qury_no"], **period,
            "medfee_sumamt": float(totals.medfee_sumamt), "fund_pay_sumamt": float(totals.fund_pay_sumamt),
            "cash_payamt": float(totals.cash_payamt), "fixmedins_setl_cnt": totals.fixmedins_setl_cnt,
            "clr_type": clr_type}})
        fileinfo = details.output["fileinfo"]
        downloaded = await self._call("9102", {"fsDownloadIn": {
            "file_qury_no": fileinfo["file_qury_no"], "filename": fileinfo["filename"], "fixmedins_code": code}})
        result.centre_rows = parse_result_file(downloaded.file or b"")
        result.differences = differences(in_group, result.centre_rows)
        return result

    async def _call(self, infno: str, input: dict[str, Any]) -> CentreReply:
        wire = Wire()
        self.wires.append(wire)
        sign_no = await self.sessions.sign_no(self.operator, wire)
        wire.step(step="call", infno=infno)
        envelope = self.centre.envelope(infno=infno, input=input, operator=self.operator, sign_no=sign_no)
        return await self.centre.post(envelope, wire)
