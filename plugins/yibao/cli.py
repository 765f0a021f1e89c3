"""`hisbridge yibao reconcile`: month-end (or any period) reconciliation against the centre.

Settlements come from the engine's own log: every replied 2207/2304 and 2208/2305 message
on the yibao channel, read from its response_transformed stage. Exit status 0 means every
group balanced, 1 that at least one did not (the differences are listed), 2 a usage or
configuration error.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from engine.config.loader import adapter_config
from engine.errors import ConfigError
from engine.transports.http import HttpClients
from plugins.yibao.adapter import YibaoAdapter
from plugins.yibao.reconcile import (
    LedgerRow,
    Reconciler,
    ReconcileReport,
    SettlementRecord,
    ledger_differences,
    read_his_ledger,
    records_from_calls,
)
from plugins.yibao.reconcile.model import CANCELLING, SETTLING

if TYPE_CHECKING:
    from engine.cli import CliContext
    from engine.store.store import MessageStore

MAX_MESSAGES_PER_CODE = 1_000_000


@click.group("yibao")
def yibao_group() -> None:
    """National medical-insurance platform (医保) commands."""


@yibao_group.command("reconcile")
@click.option("--date", "begin", required=True, type=click.DateTime(["%Y-%m-%d"]), help="first day, e.g. 2026-11-01")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="last day (default: --date)")
@click.option("--insutype", help="only this insurance type, e.g. 310")
@click.option("--clr-type", "clr_type", help="only this clearing type, e.g. 11")
@click.option("--destination", help="the yibao destination to use when several are configured")
@click.option("--his-ledger", "his_ledger", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="CSV export of the HIS ledger (columns setl_id, medfee_sumamt, status) to compare too")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.pass_obj
def reconcile(
    obj: CliContext, begin: datetime, end: datetime | None, insutype: str | None, clr_type: str | None,
    destination: str | None, his_ledger: Path | None, output_format: str,
) -> None:
    """Reconcile settlements with the centre: totals (3201), then details (3202) where they differ."""
    his = read_his_ledger(his_ledger) if his_ledger is not None else None
    report = asyncio.run(_reconcile(obj, begin.date(), (end or begin).date(), insutype, clr_type, destination, his))
    click.echo({"table": render_table, "csv": render_csv, "json": render_json}[output_format](report), nl=False)
    sys.exit(0 if report.balanced else 1)


async def _reconcile(
    obj: CliContext, begin: date, end: date, insutype: str | None, clr_type: str | None, wanted: str | None,
    his: dict[str, LedgerRow] | None,
) -> ReconcileReport:
    channel, destination = _yibao_destination(obj, wanted)
    clients = HttpClients()
    # A tool's msgids come from a range of their own, so they never collide with the daemon's.
    adapter = YibaoAdapter(adapter_config(obj.catalogue, destination, obj.base_dir), clients, msgid_role="tool")
    store = await obj.open_store()
    try:
        records = await settlements_from_store(store, channel, begin, end)
        reconciler = Reconciler(adapter.centre, adapter.sessions, adapter.default_operator)
        report = await reconciler.run(records, begin, end, insutype=insutype, clr_type=clr_type)
        if his is not None:
            in_period = {k: r for k, r in records.items() if begin <= r.setl_date <= end}
            report.his_differences = ledger_differences(his, in_period, report.centre_revoked)
        return report
    finally:
        await adapter.aclose()
        await clients.aclose()
        await store.close()


def _yibao_destination(obj: CliContext, wanted: str | None) -> tuple[str, Any]:
    found = [
        (channel.name, dest) for channel in obj.config.channels.values() for dest in channel.destinations
        if dest.adapter == YibaoAdapter.name and (wanted is None or dest.name == wanted)
    ]
    if len(found) != 1:
        names = ", ".join(dest.name for _, dest in found) or "none"
        problem = f"yibao reconcile: need exactly one yibao destination (found: {names}); name one with --destination"
        raise ConfigError([problem])
    return found[0]


async def settlements_from_store(
    store: MessageStore, channel: str, begin: date, end: date
) -> dict[str, SettlementRecord]:
    """Settlements in the engine's log: settled in the period (a day of margin either side for
    clocks), cancellations from the period's start until now."""
    since = datetime.combine(begin - timedelta(days=1), time(), UTC)
    until = datetime.combine(end + timedelta(days=2), time(), UTC)
    calls: list[tuple[datetime, str, str, dict[str, Any]]] = []
    for infno in sorted(SETTLING | CANCELLING):
        views = await store.list_messages(
            channel=channel, status="replied", since=since, until=until if infno in SETTLING else None,
            key=("infno", infno), limit=MAX_MESSAGES_PER_CODE,
        )
        for view in views:
            stage = await store.get_stage(view.id, "response_transformed")
            if stage is None:
                continue
            reply = stage.json()
            calls.append((view.received_at, infno, str(reply.get("msgid") or ""), reply.get("output") or {}))
    calls.sort(key=lambda call: call[0])
    return records_from_calls((infno, msgid, output) for _, infno, msgid, output in calls)


KIND_LABELS = {
    "centre_only": "centre has it, engine does not",
    "local_only": "engine has it, centre does not",
    "centre_revoked": "centre revoked, still settled locally",
    "amount_differs": "amounts differ",
    "his_counts_revoked": "HIS still counts a revoked settlement",
    "his_only": "HIS counts it, engine never settled it",
    "his_missing": "settled, HIS does not count it",
    "his_amount_differs": "HIS amount differs",
}


def _rows(report: ReconcileReport) -> list[dict[str, str]]:
    rows = [
        {"insutype": g.key[0], "clr_type": g.key[1], "setl_optins": g.key[2], "kind": d.kind.value,
         "setl_id": d.setl_id, "mdtrt_id": d.mdtrt_id, "psn_no": d.psn_no, "note": d.note}
        for g in report.groups for d in g.differences
    ]
    for d in report.his_differences:
        key = (d.local.insutype, d.local.clr_type, d.local.setl_optins) if d.local else ("", "", "")
        rows.append({"insutype": key[0], "clr_type": key[1], "setl_optins": key[2], "kind": d.kind.value,
                     "setl_id": d.setl_id, "mdtrt_id": d.mdtrt_id, "psn_no": d.psn_no, "note": d.note})
    return rows


def render_table(report: ReconcileReport) -> str:
    out = io.StringIO()
    out.write(f"reconciliation {report.begin} .. {report.end}: "
              f"{'BALANCED' if report.balanced else 'NOT BALANCED'}\n")
    for group in report.groups:
        totals = group.totals
        out.write(f"  insutype {group.key[0]} clr_type {group.key[1]} setl_optins {group.key[2]}: "
                  f"{totals.fixmedins_setl_cnt} settlements, medfee {totals.medfee_sumamt}, "
                  f"fund {totals.fund_pay_sumamt}, acct {totals.acct_pay} -> "
                  f"{'balanced' if group.balanced else 'NOT balanced: ' + group.centre_says}\n")
        for difference in group.differences:
            out.write(f"    {difference.setl_id:<12} {KIND_LABELS[difference.kind.value]:<40} "
                      f"mdtrt_id {difference.mdtrt_id} {difference.note}\n")
    if report.his_differences:
        out.write(f"  HIS ledger: {len(report.his_differences)} difference(s)\n")
        for difference in report.his_differences:
            out.write(f"    {difference.setl_id:<12} {KIND_LABELS[difference.kind.value]:<40} {difference.note}\n")
    return out.getvalue()


def render_csv(report: ReconcileReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["insutype", "clr_type", "setl_optins", "kind", "setl_id", "mdtrt_id",
                                             "psn_no", "note"])
    writer.writeheader()
    writer.writerows(_rows(report))
    return out.getvalue()


def render_json(report: ReconcileReport) -> str:
    groups = [
        {"insutype": g.key[0], "clr_type": g.key[1], "setl_optins": g.key[2], "balanced": g.balanced,
         "centre_says": g.centre_says, "settlements": g.totals.fixmedins_setl_cnt,
         "medfee_sumamt": str(g.totals.medfee_sumamt), "fund_pay_sumamt": str(g.totals.fund_pay_sumamt),
         "acct_pay": str(g.totals.acct_pay)}
        for g in report.groups
    ]
    document = {"begin": f"{report.begin}", "end": f"{report.end}", "balanced": report.balanced, "groups": groups,
                "differences": _rows(report)}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
