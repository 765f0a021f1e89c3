"""Synthetic trace codes, mapping table and HIS calls for the drug_trace tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FIXMEDINS_CODE = "H44030400123"
AMOXICILLIN_PREFIX = "8123457"  # small package (盒)
AMOXICILLIN_CASE_PREFIX = "8123456"  # case (箱), maps to the same catalogue item
AMOXICILLIN_CODE = "XA01CAA017A001010100001"
IBUPROFEN_PREFIX = "8765432"
IBUPROFEN_CODE = "XM01AEB003A001010100002"


def code(prefix: str, serial: int) -> str:
    return f"{prefix}{serial:013d}"


def write_mapping(directory: Path) -> Path:
    path = directory / "drug_trace_codes.csv"
    path.write_text(
        "trace_prefix,med_list_codg,drug_name,package\n"
        f"{AMOXICILLIN_CASE_PREFIX},{AMOXICILLIN_CODE},阿莫西林胶囊(箱),large\n"
        f"{AMOXICILLIN_PREFIX},{AMOXICILLIN_CODE},阿莫西林胶囊,\n"
        f"{IBUPROFEN_PREFIX},{IBUPROFEN_CODE},布洛芬片,small\n",
        encoding="utf-8",
    )
    return path


def adapter_config(base_url: str, directory: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "base_url": base_url,
        "fixmedins_code": FIXMEDINS_CODE,
        "fixmedins_name": "模拟人民医院",
        "mdtrtarea_admvs": "440300",
        "operator": {"opter": "0201", "opter_name": "测试药师"},
        "mapping_table": str(write_mapping(directory)),
        "ledger_file": str(directory / "ledger.sqlite"),
        "timeout": 5.0,
    }
    config.update(overrides)
    return config


def sale_record(document: str = "LS202611220001", **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "fixmedins_hilist_id": "YP0001", "fixmedins_hilist_name": "阿莫西林胶囊", "fixmedins_bchno": "PC240312",
        "rx_flag": "1", "trdn_flag": "0", "sel_retn_cnt": 2, "sel_retn_time": "2026-11-22 09:30:00",
        "sel_retn_opter_name": "测试药师", "rtal_docno": document, "mdtrt_setl_type": "2",
    }
    record.update(fields)
    return record


def sale(*serials: int, kind: str = "sale", document: str = "LS202611220001", **fields: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "record": sale_record(document, **fields),
        "trace_codes": [code(AMOXICILLIN_PREFIX, serial) for serial in serials],
    }
