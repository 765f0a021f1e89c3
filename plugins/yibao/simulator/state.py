"""What the simulated centre remembers: sign-ins, people, visits, fees, settlements, files.

Amounts follow the centre's invariants: medfee = fund pay + personal part, personal part =
account pay + cash. A settlement is `active` until cancelled (2208/2305), reversed (2601),
or revoked by the centre behind the hospital's back (`revoke`, for reconciliation tests).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
POOL_RATE = Decimal("0.6")
DEFAULT_BALANCE = Decimal("1500.00")


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT, ROUND_HALF_UP)


class CentreRefusal(Exception):
    """A business error the centre answers with infcode -1 and this err_msg."""


@dataclass
class Person:
    psn_no: str
    certno: str
    psn_name: str
    insuplc_admdvs: str
    balance: Decimal = DEFAULT_BALANCE


@dataclass
class Settlement:
    setl_id: str
    msgid: str
    infno: str
    psn_no: str
    mdtrt_id: str
    insutype: str
    clr_type: str
    setl_optins: str
    med_type: str
    medfee_sumamt: Decimal
    fund_pay_sumamt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal
    setl_time: datetime
    status: str = "active"  # active | cancelled | reversed | revoked

    @property
    def psn_part_amt(self) -> Decimal:
        return self.acct_pay + self.psn_cash_pay

    @property
    def setl_date(self) -> date:
        return self.setl_time.date()


@dataclass
class CentreState:
    admvs: str = "440300"
    people: dict[str, Person] = field(default_factory=dict)  # by mdtrt_cert_no
    unknown_cert_nos: set[str] = field(default_factory=set)
    sign_ins: dict[str, str] = field(default_factory=dict)  # sign_no -> opter
    visits: dict[str, dict[str, Any]] = field(default_factory=dict)
    fees: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # mdtrt_id -> feedetl_sn -> row
    settlements: dict[str, Settlement] = field(default_factory=dict)
    by_msgid: dict[str, str] = field(default_factory=dict)  # msgid -> setl_id
    reversed_msgids: set[str] = field(default_factory=set)
    seen_msgids: set[str] = field(default_factory=set)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # file_qury_no -> (filename, bytes)
    inventory: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # infno of every call answered, in order
    call_paths: list[tuple[str, str]] = field(default_factory=list)  # (URL path, infno) of the same calls
    first_serial: int = 1  # a restarted centre keeps issuing new ids: start past the old ones
    _serial: itertools.count[int] = field(init=False)

    def __post_init__(self) -> None:
        self._serial = itertools.count(self.first_serial)

    def next_serial(self) -> int:
        return next(self._serial)

    def ref_msgid(self, now: datetime) -> str:
        return f"{self.admvs}{now:%Y%m%d%H%M%S}{self.next_serial():010d}"

    # --- sign-in ---------------------------------------------------------------------------

    def sign_in(self, opter: str, now: datetime) -> str:
        sign_no = f"{self.admvs}{now:%Y%m%d%H%M%S}{self.next_serial():010d}"
        self.sign_ins[sign_no] = opter
        return sign_no

    def invalidate_sign_ins(self) -> None:
        self.sign_ins.clear()

    # --- people ------------------------------------------------------------------------------

    def person(self, cert_no: str) -> Person:
        if cert_no in self.unknown_cert_nos:
            raise CentreRefusal("人员信息不存在")
        found = self.people.get(cert_no)
        if found is None:
            digits = int(hashlib.sha256(cert_no.encode()).hexdigest(), 16) % 10**10
            found = Person(f"{self.admvs}0000{digits:010d}"[:20], cert_no, f"模拟患者{digits % 1000:03d}", self.admvs)
            self.people[cert_no] = found
        return found

    def person_by_psn_no(self, psn_no: str) -> Person:
        for person in self.people.values():
            if person.psn_no == psn_no:
                return person
        raise CentreRefusal("人员信息不存在")

    # --- settlements -----------------------------------------------------------------------

    def settle(self, *, infno: str, msgid: str, data: dict[str, Any], now: datetime, commit: bool) -> Settlement:
        person = self.person_by_psn_no(data["psn_no"])
        medfee = money(data["medfee_sumamt"])
        own = (money(data.get("fulamt_ownpay_amt")) + money(data.get("overlmt_selfpay"))
               + money(data.get("preselfpay_amt")))
        inscp = money(data["inscp_scp_amt"]) if data.get("inscp_scp_amt") not in (None, "") else medfee - own
        fund = min(money(inscp * POOL_RATE), medfee)
        personal = medfee - fund
        acct = min(person.balance, personal) if str(data.get("acct_used_flag")) == "1" else Decimal("0.00")
        settlement = Settlement(
            setl_id=f"{self.next_serial() + 400000000}" if commit else "",
            msgid=msgid,
            infno=infno,
            psn_no=person.psn_no,
            mdtrt_id=str(data["mdtrt_id"]),
            insutype=str(data.get("insutype", "310")),
            clr_type="11" if infno in ("2206", "2207") else "21",
            setl_optins=self.admvs,
            med_type=str(data.get("med_type") or ("11" if infno in ("2206", "2207") else "21")),
            medfee_sumamt=medfee,
            fund_pay_sumamt=fund,
            acct_pay=acct,
            psn_cash_pay=personal - acct,
            setl_time=now,
        )
        if commit:
            person.balance -= acct
            self.settlements[settlement.setl_id] = settlement
            self.by_msgid[msgid] = settlement.setl_id
        return settlement

    def cancel(self, setl_id: str, mdtrt_id: str) -> Settlement:
        settlement = self.settlements.get(setl_id)
        if settlement is None or settlement.mdtrt_id != mdtrt_id:
            raise CentreRefusal("结算信息不存在")
        if settlement.status != "active":
            raise CentreRefusal(f"该结算已撤销，不能重复撤销（状态：{settlement.status}）")
        settlement.status = "cancelled"
        self.person_by_psn_no(settlement.psn_no).balance += settlement.acct_pay
        return settlement

    def reverse(self, omsgid: str) -> None:
        if omsgid in self.reversed_msgids:
            raise CentreRefusal("该交易已冲正")
        setl_id = self.by_msgid.get(omsgid)
        if setl_id is None:
            raise CentreRefusal("原交易不存在，无需冲正")
        settlement = self.settlements[setl_id]
        if settlement.status == "active":
            self.person_by_psn_no(settlement.psn_no).balance += settlement.acct_pay
        settlement.status = "reversed"
        self.reversed_msgids.add(omsgid)

    def revoke(self, setl_id: str) -> None:
        """The centre revokes a settlement without telling the hospital."""
        self.settlements[setl_id].status = "revoked"

    def active_settlements(
        self, begin: date, end: date, *, insutype: str | None = None, clr_type: str | None = None
    ) -> list[Settlement]:
        return [
            s for s in self.settlements.values()
            if s.status == "active" and begin <= s.setl_date <= end
            and (insutype is None or s.insutype == insutype) and (clr_type is None or s.clr_type == clr_type)
        ]

    def store_file(self, filename: str, content: bytes, now: datetime) -> str:
        file_qury_no = f"fsi/{self.admvs}/{hashlib.md5(content + str(self.next_serial()).encode()).hexdigest()}"
        self.files[file_qury_no] = (filename, content)
        return file_qury_no
