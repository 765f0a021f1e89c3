"""`hisbridge e-invoice upload-history --csv FILE | --sql QUERY --db URL`: historical invoices,
paced and resumable;
`hisbridge simulate e-invoice --port N`: the simulated platform.

upload-history exits 0 when every row is issued or skipped, 1 when some row is invalid or
failed (the report says which and why), 2 for a usage or configuration error.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from engine.config.loader import adapter_config
from engine.errors import ConfigError, StoreError
from engine.transports.http import HttpClients
from plugins.e_invoice.adapter import EInvoiceAdapter
from plugins.e_invoice.history import HistoryUpload, RowItem, query_rows, read_rows

if TYPE_CHECKING:
    from engine.cli import CliContext
    from engine.store.store import MessageStore


@click.group("e-invoice")
def e_invoice_group() -> None:
    """Fiscal electronic invoice (财政电子票据) commands."""


@e_invoice_group.command("upload-history")
@click.option("--csv", "source", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="the old HIS's export: a method column and one column per business field")
@click.option("--sql", "query", help="instead of --csv: a query on the old HIS's database, same columns")
@click.option("--db", "database_url", help="SQLAlchemy URL of the old HIS's database (with --sql)")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="per-row result CSV, appended; a rerun skips what it shows as issued "
                   "(default: <csv>.result.csv; required with --sql)")
@click.option("--rate", type=click.FloatRange(min=0.01), default=5.0, show_default=True,
              help="platform calls per second")
@click.option("--destination", help="the e_invoice destination to use when several are configured")
@click.pass_obj
def upload_history(
    obj: CliContext, source: Path | None, query: str | None, database_url: str | None, report: Path | None,
    rate: float, destination: str | None,
) -> None:
    """Issue historical invoices, skipping busNos already issued; write a per-row report."""
    if (source is None) == (query is None):
        raise click.UsageError("give exactly one of --csv FILE or --sql QUERY")
    if query is not None and (database_url is None or report is None):
        raise click.UsageError("--sql needs --db URL and --report FILE")
    if source is not None:
        rows: Callable[[], Iterator[RowItem]] = lambda: read_rows(source)  # noqa: E731 - read twice: count, upload
    else:
        assert query is not None and database_url is not None
        rows = lambda: query_rows(database_url, query)  # noqa: E731
    report = report or (source.with_suffix(".result.csv") if source else None)
    assert report is not None
    counts = asyncio.run(_upload(obj, rows, report, rate, destination))
    summary = ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "nothing to do"
    click.echo(f"{summary}; report: {report}")
    sys.exit(1 if counts.get("invalid") or counts.get("failed") else 0)


async def _upload(
    obj: CliContext, rows: Callable[[], Iterator[RowItem]], report: Path, rate: float, wanted: str | None
) -> dict[str, int]:
    config = _destination(obj, wanted)
    clients = HttpClients()
    adapter = EInvoiceAdapter(adapter_config(obj.catalogue, config, obj.base_dir), clients)
    store = await _store_or_none(obj)
    total = sum(1 for _ in rows())
    try:
        upload = HistoryUpload(adapter, report, rate=rate, already_sent=_sent_in(store) if store else None)
        with click.progressbar(length=total, label="uploading", file=sys.stderr) as bar:
            return await upload.run(rows(), progress=lambda: bar.update(1))
    finally:
        await adapter.aclose()
        await clients.aclose()
        if store is not None:
            await store.close()


@click.command("e-invoice")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8091, show_default=True)
@click.option("--appid", default="TESTAPPID0001", show_default=True)
@click.option("--key-env", default="HISBRIDGE_SIM_EINVOICE_KEY", show_default=True,
              help="variable holding the appid's key (unset: testkey123)")
def simulate_e_invoice(host: str, port: int, appid: str, key_env: str) -> None:
    """Run the simulated fiscal e-invoice platform until Ctrl-C."""
    from plugins.e_invoice.simulator import PlatformServer, PlatformSimulator

    simulator = PlatformSimulator(appid=appid, key=os.environ.get(key_env, "testkey123"))
    server = PlatformServer(simulator, host=host, port=port)

    async def serve() -> None:
        await server.start()
        click.echo(f"e-invoice platform simulator on {server.base_url}")
        try:
            await server.wait()
        finally:
            await server.stop()

    asyncio.run(serve())


def _destination(obj: CliContext, wanted: str | None) -> Any:
    found = [
        dest for channel in obj.config.channels.values() for dest in channel.destinations
        if dest.adapter == EInvoiceAdapter.name and (wanted is None or dest.name == wanted)
    ]
    if len(found) != 1:
        names = ", ".join(dest.name for dest in found) or "none"
        problem = (f"e-invoice upload-history: need exactly one e_invoice destination "
                   f"(found: {names}); name one with --destination")
        raise ConfigError([problem])
    return found[0]


async def _store_or_none(obj: CliContext) -> MessageStore | None:
    """The engine's store when the daemon has created one: its delivered busNos are skipped."""
    try:
        return await obj.open_store()
    except StoreError:
        return None


def _sent_in(store: MessageStore) -> Any:
    async def already_sent(bus_no: str) -> bool:
        for message_id in await store.find_by_key("bus_no", bus_no):
            view = await store.get_message(message_id)
            if view is not None and view.status == "sent":
                return True
        return False

    return already_sent
