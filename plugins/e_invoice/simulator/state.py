"""What the simulated platform remembers: bills by busNo and by number, red-flushes, calls.

Codes and texts of failures are placeholders: the platform's failure-code table was not
found (§2.1 [U]); the texts follow what integrations show and the plugin's rules match them.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

DUPLICATE = ("E1001", "业务流水号重复")
AMOUNT_MISMATCH = ("E2001", "缴费渠道金额合计与票据总金额不一致")
FIELD_MISSING = "E2002"
NO_SUCH_BILL = ("E3001", "电子票据不存在")
ALREADY_FLUSHED = ("E3002", "该电子票据已冲红，不能重复冲红")
UNKNOWN_METHOD = "E4001"
BAD_SIGN = ("E9001", "签名验证失败")
BATCH_CODE = "44010124"
QR_PLACEHOLDER = base64.b64encode(b"\x89PNG\r\n\x1a\nsimulated-qr").decode()


class PlatformRefusal(Exception):
    def __init__(self, code: str, text: str) -> None:
        self.code = code
        self.text = text
        super().__init__(f"{code} {text}")


@dataclass
class Bill:
    bus_no: str
    method: str
    bill_no: str
    random: str
    bus_date_time: str
    total: str
    created: str
    place_code: str = ""
    bus_type: str = ""
    scarlet_no: str | None = None

    def listed(self) -> dict[str, Any]:
        """The bill as getBillByBusDate lists it: the fields one integration's list DTO reads
        (no picture links or QR code there)."""
        return {"busDate": self.bus_date_time, "busNo": self.bus_no, "busType": self.bus_type,
                "placeCode": self.place_code, "billName": "医疗收费票据", "billBatchCode": BATCH_CODE,
                "billNo": self.bill_no, "random": self.random, "totalAmt": self.total, "ivcDateTime": self.created,
                "dataType": "1", "state": "1"}

    def issued(self) -> dict[str, Any]:
        link = f"http://einvoice.sim/h5/bill?code={BATCH_CODE}&no={self.bill_no}"
        return {"busNo": self.bus_no, "billBatchCode": BATCH_CODE, "billNo": self.bill_no, "random": self.random,
                "createTime": self.created, "billQRCode": QR_PLACEHOLDER, "pictureUrl": link,
                "pictureNetUrl": link.replace("http://", "https://"), "billBusDate": self.bus_date_time,
                "totalAmt": self.total}


@dataclass
class PlatformState:
    same_bill_for_duplicates: bool = False
    """A repeated busNo gets the bill already issued (S0000) instead of E1001; which one the
    real platform does is not known (§5 [U]), so the adapter is tested against both."""
    bills: dict[str, Bill] = field(default_factory=dict)
    """Issued bills (invoices and payment vouchers) by busNo."""
    by_number: dict[str, Bill] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    issued_count: int = 0

    def issue(self, method: str, business: dict[str, Any], now: datetime) -> dict[str, Any]:
        bus_no = str(business.get("busNo") or "")
        for name in ("busNo", "payer", "busDateTime", "placeCode", "totalAmt"):
            if method != "writeOffPayMentVoucher" and not business.get(name):
                raise PlatformRefusal(FIELD_MISSING, f"{name}不能为空")
        if bus_no in self.bills:
            if self.same_bill_for_duplicates:
                return self.bills[bus_no].issued()
            raise PlatformRefusal(*DUPLICATE)
        _check_pay_channels(method, business)
        self.issued_count += 1
        bill = Bill(bus_no, method, f"{self.issued_count:010d}", secrets.token_hex(3),
                    str(business.get("busDateTime")), str(business.get("totalAmt")), _stamp(now),
                    str(business.get("placeCode") or ""), str(business.get("busType") or ""))
        self.bills[bus_no] = bill
        self.by_number[bill.bill_no] = bill
        return bill.issued()

    def write_off(self, business: dict[str, Any], now: datetime) -> dict[str, Any]:
        bill = self._bill(business)
        if bill.scarlet_no is not None:
            raise PlatformRefusal(*ALREADY_FLUSHED)
        self.issued_count += 1
        bill.scarlet_no = f"{self.issued_count:010d}"
        return {"eScarletBillBatchCode": BATCH_CODE, "eScarletBillNo": bill.scarlet_no,
                "eScarletRandom": secrets.token_hex(3), "createTime": _stamp(now),
                "billQRCode": QR_PLACEHOLDER, "pictureUrl": f"http://einvoice.sim/h5/bill?no={bill.scarlet_no}",
                "pictureNetUrl": f"https://einvoice.sim/h5/bill?no={bill.scarlet_no}",
                "billBusDate": str(business.get("busDateTime"))}

    def state_of(self, business: dict[str, Any]) -> dict[str, Any]:
        bill = self._bill(business)
        return {"billBatchCode": BATCH_CODE, "billNo": bill.bill_no, "state": 1,
                "isScarlet": 0 if bill.scarlet_no is None else 1}

    def by_bus_date(self, business: dict[str, Any]) -> dict[str, Any]:
        begin, end = str(business.get("busBgnDate", "")), str(business.get("busEndDate", ""))
        page, size = int(business.get("pageNo") or 1), int(business.get("pageSize") or 100)
        place = str(business.get("placeCode") or "")
        found = [b.listed() for b in self.bills.values()
                 if begin <= b.bus_date_time <= end and place in ("", b.place_code)]
        return {"total": len(found), "pageNo": page, "billList": found[(page - 1) * size: page * size]}

    def _bill(self, business: dict[str, Any]) -> Bill:
        bill = self.by_number.get(str(business.get("billNo")))
        if bill is None or business.get("billBatchCode") != BATCH_CODE:
            raise PlatformRefusal(*NO_SUCH_BILL)
        return bill


def _check_pay_channels(method: str, business: dict[str, Any]) -> None:
    if method == "writeOffPayMentVoucher":
        return
    try:
        total = Decimal(str(business["totalAmt"]))
        paid = sum((Decimal(str(c["payChannelValue"])) for c in business.get("payChannelDetail") or []), Decimal(0))
    except (InvalidOperation, KeyError, TypeError):
        raise PlatformRefusal(*AMOUNT_MISMATCH) from None
    if paid != total:
        raise PlatformRefusal(*AMOUNT_MISMATCH)


def _stamp(now: datetime) -> str:
    return f"{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}"
