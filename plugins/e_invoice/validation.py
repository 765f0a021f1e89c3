"""Checks an invoice before anything is sent, the way the platform would (§2.3).

HIS's JSON is read with `parse_float=Decimal`, so an amount is exactly what HIS wrote; it is
never a binary float. Amounts leave as strings with the platform's scale (2 places for
totals and charge lines, up to 4 for list lines). Every problem is an `InputError` naming
the field (`data.payChannelDetail`, `data.chargeDetail[2].amt`), party `his`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import InputError
from plugins.e_invoice.methods import Method

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")  # (14,2)
TOP_LEVEL_AMOUNTS = ("totalAmt", "accountPay", "fundPay", "otherfundPay", "ownPay", "selfConceitedAmt",
                     "selfPayAmt", "selfCashPay", "cashPay", "reimbursementAmt")
BUS_DATE_TIME = re.compile(r"^\d{17}$")  # yyyyMMddHHmmssSSS


def validated(method: Method, data: Any) -> dict[str, Any]:
    """The business JSON to send for `method`, checked and with amounts as strings."""
    if not isinstance(data, dict):
        raise InputError("must be a JSON object with the method's business fields", field="data")
    business = {**method.defaults, **data}
    for name in method.required:
        if business.get(name) in (None, "", []):
            raise InputError("required", field=f"data.{name}")
    for name in ("busNo", "billNo", "billBatchCode"):
        if name in business and not isinstance(business[name], str):
            raise InputError("must be a string", field=f"data.{name}")
    if "busDateTime" in business and not BUS_DATE_TIME.match(str(business["busDateTime"])):
        raise InputError("must be yyyyMMddHHmmssSSS (17 digits)", field="data.busDateTime")
    _check_payer(business)
    for name in TOP_LEVEL_AMOUNTS:
        if name in business:
            business[name] = _text(amount(business[name], f"data.{name}", places=2))
    if method.amounts:
        _check_sums(business)
    return business


def amount(value: Any, field: str, *, places: int) -> Decimal:
    """A decimal amount of at most `places` decimals; floats are refused (parse with Decimal)."""
    if isinstance(value, (bool, float)):
        raise InputError("amount must be a decimal string or number read exactly, not a float", field=field)
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        raise InputError(f"not an amount: {value!r}", field=field) from None
    if not parsed.is_finite():
        raise InputError(f"not an amount: {value!r}", field=field)
    exponent = parsed.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise InputError(f"at most {places} decimal places: {value}", field=field)
    if abs(parsed) > MAX_AMOUNT:
        raise InputError(f"too large: {value}", field=field)
    return parsed


def _text(value: Decimal, places: int = 2) -> str:
    return str(value.quantize(Decimal(1).scaleb(-places))) if places else str(value)


def _check_payer(business: dict[str, Any]) -> None:
    payer_type = business.get("payerType")
    if payer_type not in (None, "") and str(payer_type) not in ("1", "2"):
        raise InputError("must be 1 (个人) or 2 (单位)", field="data.payerType")
    tel = business.get("tel")
    if tel not in (None, "") and not re.fullmatch(r"\d{11}", str(tel)):
        raise InputError("must be 11 digits", field="data.tel")
    payer = business.get("payer")
    if payer is not None and (not isinstance(payer, str) or len(payer) > 100):
        raise InputError("must be a name of at most 100 characters", field="data.payer")


def _lines(business: dict[str, Any], name: str) -> list[dict[str, Any]]:
    lines = business.get(name) or []
    if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
        raise InputError("must be a list of objects", field=f"data.{name}")
    return lines


def _check_sums(business: dict[str, Any]) -> None:
    total = Decimal(business["totalAmt"])
    channels = _lines(business, "payChannelDetail")
    paid = Decimal(0)
    for index, line in enumerate(channels):
        where = f"data.payChannelDetail[{index}]"
        if not line.get("payChannelCode"):
            raise InputError("required", field=f"{where}.payChannelCode")
        value = amount(line.get("payChannelValue"), f"{where}.payChannelValue", places=2)
        line["payChannelValue"] = _text(value)
        paid += value
    if paid != total:
        raise InputError(f"pay channels sum to {paid}, totalAmt is {total}", field="data.payChannelDetail")
    charges = _lines(business, "chargeDetail")
    if not charges:
        return
    charged = Decimal(0)
    by_code: dict[str, Decimal] = {}
    for index, line in enumerate(charges):
        where = f"data.chargeDetail[{index}]"
        value = amount(line.get("amt"), f"{where}.amt", places=2)
        line["amt"] = _text(value)
        for name in ("std", "selfAmt"):
            if name in line:
                line[name] = _text(amount(line[name], f"{where}.{name}", places=2))
        by_code[str(line.get("chargeCode", ""))] = by_code.get(str(line.get("chargeCode", "")), Decimal(0)) + value
        charged += value
    if charged != total:
        raise InputError(f"charge lines sum to {charged}, totalAmt is {total}", field="data.chargeDetail")
    _check_list_lines(business, by_code)


def _check_list_lines(business: dict[str, Any], by_code: dict[str, Decimal]) -> None:
    listed: dict[str, Decimal] = defaultdict(Decimal)
    for index, line in enumerate(_lines(business, "listDetail")):
        where = f"data.listDetail[{index}]"
        value = amount(line.get("amt"), f"{where}.amt", places=4)
        line["amt"] = str(value)
        code = str(line.get("chargeCode", ""))
        if code not in by_code:
            raise InputError(f"chargeCode {code!r} has no chargeDetail line", field=f"{where}.chargeCode")
        listed[code] += value
    for code, value in listed.items():
        if value.quantize(CENT) != by_code[code]:
            raise InputError(f"list lines of chargeCode {code} sum to {value}, its charge line is {by_code[code]}",
                             field="data.listDetail")
