"""Synthetic invoices for the e_invoice tests: invented payers, no real people."""

from __future__ import annotations

from typing import Any

APPID = "TESTAPPID0001"
APP_KEY = "testkey123"
KEY_ENV = "EINVOICE_TEST_APP_KEY"


def outpatient(bus_no: str = "MZ202611220001", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "busNo": bus_no, "busType": "02", "payer": "测试患者甲", "busDateTime": "20261122094000123",
        "placeCode": "KPD001", "payee": "测试收费员", "author": "测试收费员", "checker": "测试收费员",
        "totalAmt": "125.50", "payerType": "1", "tel": "13900000000",
        "payChannelDetail": [{"payChannelCode": "11", "payChannelValue": "100.00"},
                             {"payChannelCode": "02", "payChannelValue": "25.50"}],
        "chargeDetail": [{"sortNo": 1, "chargeCode": "YLMZ03", "chargeName": "西药费", "unit": "项",
                          "std": "125.50", "number": 1, "amt": "125.50", "selfAmt": "0.00"}],
        "listDetail": [{"listDetailNo": "1", "chargeCode": "YLMZ03", "chargeName": "西药费", "code": "YP000123",
                        "name": "测试药品", "unit": "盒", "std": "62.75", "number": 2, "amt": "125.50"}],
        "isArrears": "0",
    }
    data.update(overrides)
    return {"method": "outpatient", "data": data}


def adapter_config(base_url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"base_url": base_url, "appid": APPID, "app_key": {"$env": KEY_ENV}, "timeout": 5.0}
    config.update(overrides)
    return config
