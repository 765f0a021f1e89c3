"""The platform's methods (§2.2) as data: what HIS may ask for and what each one needs.

HIS names a method by its short name (`outpatient`) or the platform's own (`invoiceEBillOutpatient`).
`kind` tells the adapter how a repeat is made safe: `issue` calls are keyed by `busNo` (the
platform refuses a second invoice for one busNo, and a lost answer is resolved by looking
the busNo up), `write_off` calls are checked against the bill's state, `query` calls are
read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from engine.errors import InputError

MethodKind = Literal["issue", "write_off", "query"]

ISSUE_REQUIRED = ("busNo", "busDateTime", "placeCode", "payee", "author", "payer", "totalAmt",
                  "payChannelDetail")


@dataclass(frozen=True)
class Method:
    alias: str
    name: str
    meaning: str
    kind: MethodKind
    required: tuple[str, ...] = ()
    defaults: dict[str, str] = field(default_factory=dict)
    amounts: bool = False
    """Whether the invoice amount rules apply (pay channels and detail lines sum to totals)."""


CATALOGUE: tuple[Method, ...] = (
    Method("outpatient", "invoiceEBillOutpatient", "门诊电子票据开具", "issue", ISSUE_REQUIRED, amounts=True),
    Method("inpatient", "invEBillHospitalized", "住院电子票据开具", "issue",
           ISSUE_REQUIRED + ("hospitalNo", "inHospitalDate", "outHospitalDate"), amounts=True),
    Method("registration", "invEBillRegistration", "挂号电子票据开具", "issue", ISSUE_REQUIRED,
           defaults={"busType": "06"}, amounts=True),
    Method("checkup", "invEBillCheckUp", "体检电子票据开具", "issue", ISSUE_REQUIRED, amounts=True),
    Method("pay_voucher", "invoicePayMentVoucher", "住院预交金电子凭证开具", "issue",
           ("busNo", "busDateTime", "placeCode", "payee", "payer", "totalAmt", "payChannelDetail"),
           defaults={"busType": "07"}, amounts=True),
    Method("pay_voucher_refund", "writeOffPayMentVoucher", "住院预交金电子凭证退款", "issue",
           ("busNo", "busDateTime", "placeCode", "payee", "totalAmt"), defaults={"busType": "07"}),
    Method("write_off", "writeOffEBill", "电子票据冲红", "write_off",
           ("billBatchCode", "billNo", "reason", "operator", "busDateTime", "placeCode")),
    Method("status", "getEBillStatesByBillInfo", "电子票据状态查询", "query", ("billBatchCode", "billNo")),
    # No separate picture method was found in the sources (§2.2 [NF]): the picture URLs and
    # QR code of an issued bill come back from the business-date lookup, filtered by busNo.
    Method("picture", "getBillByBusDate", "电子票据图片/二维码获取", "query", ("busNo", "busDateTime")),
    Method("lookup", "getBillByBusDate", "按业务时间获取开票信息", "query", ("busBgnDate", "busEndDate")),
)

BY_NAME: dict[str, Method] = {m.alias: m for m in CATALOGUE} | {
    m.name: m for m in CATALOGUE if m.alias not in ("picture",)
}

STATUS_METHOD = "getEBillStatesByBillInfo"
LOOKUP_METHOD = "getBillByBusDate"


def method_named(name: object) -> Method:
    """The method HIS asked for; InputError naming `method` when there is none by that name."""
    if not isinstance(name, str) or not name:
        raise InputError(f"required: one of {', '.join(m.alias for m in CATALOGUE)}", field="method")
    found = BY_NAME.get(name)
    if found is None:
        raise InputError(f"unknown method {name!r} (known: {', '.join(m.alias for m in CATALOGUE)})",
                         field="method")
    return found
