"""`hisbridge e-invoice upload-history`: paced, resumable, a per-row report, never a duplicate."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner, Result

from engine.cli import main
from plugins.e_invoice.adapter import EInvoiceAdapter
from plugins.e_invoice.history import HistoryRow, HistoryUpload, read_rows
from plugins.e_invoice.simulator import Fault, PlatformServer
from tests.plugins.e_invoice.invoices import APP_KEY, KEY_ENV, adapter_config, outpatient

ROWS = 6
BAD_ROW = 4  # its pay channels do not add up


class Interrupted(Exception):
    pass


def write_export(path: Path) -> None:
    fields = ["method", "busNo", "busDateTime", "placeCode", "payee", "author", "payer", "totalAmt",
              "payChannelDetail", "chargeDetail"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        for number in range(1, ROWS + 1):
            data = outpatient(f"LS{number:04d}")["data"]
            paid = "100.00" if number == BAD_ROW else "125.50"
            writer.writerow({
                "method": "outpatient", **{name: data[name] for name in fields[1:8]},
                "payChannelDetail": json.dumps([{"payChannelCode": "02", "payChannelValue": paid}]),
                "chargeDetail": json.dumps(data["chargeDetail"], ensure_ascii=False),
            })


def write_conf(root: Path, base_url: str) -> Path:
    conf = root / "conf"
    (conf / "channels").mkdir(parents=True)
    (conf / "hisbridge.yaml").write_text(yaml.safe_dump({"store": {"url": f"sqlite:///{root / 'none.db'}"}}))
    channel = {"destinations": [{"name": "fiscal", "adapter": "e_invoice", "config": adapter_config(base_url)}]}
    (conf / "channels" / "einvoice.yaml").write_text(yaml.safe_dump(channel, allow_unicode=True))
    return conf


def upload(conf: Path, export: Path, report: Path) -> Result:
    return CliRunner().invoke(main, ["--conf", str(conf), "e-invoice", "upload-history", "--csv", str(export),
                                     "--report", str(report), "--rate", "200"])


def report_rows(report: Path) -> list[dict[str, str]]:
    with report.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def stopping_after(count: int, rows: Iterator[Any]) -> Iterator[Any]:
    for index, row in enumerate(rows):
        if index == count:
            raise Interrupted
        yield row


async def test_an_interrupted_upload_resumes_without_duplicates(
    tmp_path: Path, platform: PlatformServer, make_adapter: Callable[..., EInvoiceAdapter]
) -> None:
    export, report = tmp_path / "history.csv", tmp_path / "result.csv"
    write_export(export)
    platform.simulator.inject(Fault("drop", method="invoiceEBillOutpatient"))  # row 1's answer is lost
    with pytest.raises(Interrupted):
        await HistoryUpload(make_adapter(), report, rate=200).run(stopping_after(3, read_rows(export)))
    assert [r["outcome"] for r in report_rows(report)] == ["lookup", "issued", "issued"]

    result = await asyncio.to_thread(upload, write_conf(tmp_path, platform.base_url), export, report)
    assert result.exit_code == 1, result.output  # row 4 is invalid
    rows = report_rows(report)
    assert [(r["busNo"], r["outcome"]) for r in rows] == [
        ("LS0001", "lookup"), ("LS0002", "issued"), ("LS0003", "issued"),
        ("LS0004", "invalid"), ("LS0005", "issued"), ("LS0006", "issued"),
    ]
    assert "data.payChannelDetail" in rows[3]["error"]
    assert "skipped 3" in result.output
    state = platform.simulator.state
    assert state.issued_count == ROWS - 1
    assert state.calls.count("invoiceEBillOutpatient") == ROWS - 1
    assert {r["billNo"] for r in rows if r["billNo"]} == {b.bill_no for b in state.bills.values()}


async def test_busnos_the_engine_already_delivered_are_not_sent(
    tmp_path: Path, platform: PlatformServer, make_adapter: Callable[..., EInvoiceAdapter]
) -> None:
    export, report = tmp_path / "history.csv", tmp_path / "result.csv"
    write_export(export)

    async def sent_by_daemon(bus_no: str) -> bool:
        return bus_no in ("LS0001", "LS0002")

    rows = (row for row in read_rows(export) if isinstance(row, HistoryRow) and row.number != BAD_ROW)
    counts = await HistoryUpload(make_adapter(), report, rate=200, already_sent=sent_by_daemon).run(rows)
    assert counts == {"already_sent": 2, "issued": 3}
    assert sorted(platform.simulator.state.bills) == ["LS0003", "LS0005", "LS0006"]


async def test_rows_from_a_sql_query_on_the_old_his(
    tmp_path: Path, platform: PlatformServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, APP_KEY)
    old_his = tmp_path / "old_his.db"
    database = sa.create_engine(f"sqlite:///{old_his}")
    with database.begin() as connection:
        connection.execute(sa.text(
            "CREATE TABLE charges (method TEXT, busNo TEXT, busDateTime TEXT, placeCode TEXT, payee TEXT,"
            " author TEXT, payer TEXT, totalAmt TEXT, payChannelDetail TEXT)"))
        for number in (1, 2):
            connection.execute(sa.text(
                "INSERT INTO charges VALUES ('outpatient', :bus_no, '20250301101500000', 'KPD001', '测试收费员',"
                " '测试收费员', '测试患者丙', '30.00', :channels)"),
                {"bus_no": f"SQL{number}", "channels": json.dumps([{"payChannelCode": "02", "payChannelValue": 30.0}])})
    database.dispose()
    report = tmp_path / "sql_result.csv"
    result = await asyncio.to_thread(CliRunner().invoke, main, [
        "--conf", str(write_conf(tmp_path, platform.base_url)), "e-invoice", "upload-history",
        "--sql", "SELECT * FROM charges ORDER BY busNo", "--db", f"sqlite:///{old_his}",
        "--report", str(report), "--rate", "200"])
    assert result.exit_code == 0, result.output
    assert [(r["busNo"], r["outcome"]) for r in report_rows(report)] == [("SQL1", "issued"), ("SQL2", "issued")]
    assert platform.simulator.state.bills["SQL1"].total == "30.00"


def test_exactly_one_source_is_needed(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--conf", str(tmp_path), "e-invoice", "upload-history"])
    assert result.exit_code == 2 and "exactly one of --csv" in result.output
