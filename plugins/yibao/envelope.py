"""The common request envelope (公共入参) every yibao call carries around its `input`.

Field names and order follow the 两定机构接口规范 table (note `mdtrtarea_admvs`, one word).
Deployment values (institution, area, receiving system, operator) come from config;
per-call values (`infno`, `msgid`, `sign_no`, `insuplc_admdvs`, `input`) from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.errors import InputError

ENVELOPE_FIELDS = (
    "infno",
    "msgid",
    "mdtrtarea_admvs",
    "insuplc_admdvs",
    "recer_sys_code",
    "dev_no",
    "dev_safe_info",
    "cainfo",
    "signtype",
    "infver",
    "opter_type",
    "opter",
    "opter_name",
    "inf_time",
    "fixmedins_code",
    "fixmedins_name",
    "sign_no",
    "input",
)


@dataclass(frozen=True)
class Operator:
    """Who works the terminal: `opter_type` 1 经办人, 2 自助终端, 3 移动终端."""

    opter: str
    opter_name: str
    opter_type: str = "1"


@dataclass(frozen=True)
class Deployment:
    """The envelope values fixed for one hospital's connection to its centre."""

    fixmedins_code: str
    fixmedins_name: str
    mdtrtarea_admvs: str
    recer_sys_code: str = "YBXT"
    infver: str = "V1.0"
    dev_no: str = ""
    dev_safe_info: str = ""
    signtype: str = ""


def build_envelope(
    deployment: Deployment,
    operator: Operator,
    *,
    infno: str,
    msgid: str,
    input: dict[str, Any],
    sign_no: str = "",
    insuplc_admdvs: str | None = None,
    cainfo: str = "",
    signtype: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The request envelope, every field of the spec table present, in the spec's order.

    `insuplc_admdvs` is required when `input` holds a `psn_no` anywhere (the centre routes
    the call to the insured person's home area); otherwise the area of care is sent, as
    many sites do for 9001 and 1101.
    """
    if insuplc_admdvs is None or insuplc_admdvs == "":
        if contains_psn_no(input):
            raise InputError(
                "required when the input contains psn_no (take it from 1101 insuinfo[].insuplc_admdvs)",
                field="insuplc_admdvs",
            )
        insuplc_admdvs = deployment.mdtrtarea_admvs
    values: dict[str, Any] = {
        "infno": infno,
        "msgid": msgid,
        "mdtrtarea_admvs": deployment.mdtrtarea_admvs,
        "insuplc_admdvs": insuplc_admdvs,
        "recer_sys_code": deployment.recer_sys_code,
        "dev_no": deployment.dev_no,
        "dev_safe_info": deployment.dev_safe_info,
        "cainfo": cainfo,
        "signtype": deployment.signtype if signtype is None else signtype,
        "infver": deployment.infver,
        "opter_type": operator.opter_type,
        "opter": operator.opter,
        "opter_name": operator.opter_name,
        "inf_time": f"{now or datetime.now():%Y-%m-%d %H:%M:%S}",
        "fixmedins_code": deployment.fixmedins_code,
        "fixmedins_name": deployment.fixmedins_name,
        "sign_no": sign_no,
        "input": input,
    }
    return {name: values[name] for name in ENVELOPE_FIELDS}


def contains_psn_no(value: Any) -> bool:
    """True when a non-empty `psn_no` occurs at any depth of the input."""
    if isinstance(value, dict):
        if value.get("psn_no") not in (None, ""):
            return True
        return any(contains_psn_no(item) for item in value.values())
    if isinstance(value, list):
        return any(contains_psn_no(item) for item in value)
    return False
