"""`hisbridge simulate analyser`: replay a sample file over a real socket as the instrument
would, ASTM (ENQ, frames, waiting for each ACK, EOT; then waiting for the host's answer to
a query) or HL7 (MLLP blocks, waiting for each ACK), with injectable faults.

    hisbridge simulate analyser --protocol astm --file sample.astm --port 5000 --bad-checksum 2
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from engine.cli import simulate_group
from engine.errors import InputError
from engine.mllp.framing import MllpDecoder
from plugins.lis_device.astm.frames import ACK, scan_transcript
from plugins.lis_device.astm.records import AstmMessage
from plugins.lis_device.hl7.order_query import is_order_query
from plugins.lis_device.hl7.reader import Hl7Message
from plugins.lis_device.simulator.analyser import NO_FAULTS, AstmAnalyser, Faults, transfers_of
from plugins.lis_device.simulator.hl7_analyser import Hl7Analyser

_MLLP_START = b"\x0b"


async def replay_astm(
    sample: bytes, host: str, port: int, faults: Faults = NO_FAULTS, *, timeout: float = 30.0
) -> list[str]:
    """Send every transfer in `sample`; one line per transfer saying how it went."""
    lines = []
    analyser = await AstmAnalyser.connect(host, port, reply_timeout=timeout)
    try:
        for number, frames in enumerate(transfers_of(sample), start=1):
            report = await analyser.send(frames, faults)
            verdict = "accepted" if report.completed and report.replies[-1][-1] == ACK else "refused"
            lines.append(f"transfer {number}: {len(frames)} frames {verdict}, {report.naks} NAK")
            text = scan_transcript(b"".join(frames)).text
            if verdict == "accepted" and AstmMessage.parse(text).records_of("Q"):
                answer = AstmMessage.parse(await analyser.receive(timeout))
                kinds = "".join(record.type for record in answer.records)
                lines.append(f"transfer {number}: host answered {kinds} (L-3 {answer.get('L.3')})")
    finally:
        await analyser.close()
    return lines


def _hl7_messages(sample: bytes) -> list[bytes]:
    if _MLLP_START not in sample:
        return [sample]
    return MllpDecoder().feed(sample)


def _is_order_query(message: bytes) -> bool:
    try:
        return is_order_query(Hl7Message.parse(message))
    except InputError:
        return False


async def replay_hl7(sample: bytes, host: str, port: int, *, timeout: float = 30.0) -> list[str]:
    """Send each message of `sample` as an MLLP block; one line per ACK's MSA-1, or for an
    order query what the host answered (QAK-2 and the DSRs)."""
    lines = []
    analyser = await Hl7Analyser.connect(host, port, timeout=timeout)
    try:
        for number, message in enumerate(_hl7_messages(sample), start=1):
            if _is_order_query(message):
                answer = await analyser.query(message)
                lines.append(
                    f"message {number}: QCK {answer.query_ack.get('QAK-2')}, {len(answer.responses)} DSR"
                )
                continue
            ack = Hl7Message.parse(await analyser.send(message))
            lines.append(f"message {number}: {ack.get('MSA-1') or '?'}")
    finally:
        await analyser.close()
    return lines


@click.command("analyser")
@click.option("--protocol", type=click.Choice(["astm", "hl7"]), required=True)
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, required=True)
@click.option("--bad-checksum", type=int, multiple=True, help="ASTM: corrupt this frame's checksum once (1-based)")
@click.option("--drop-eot", is_flag=True, help="ASTM: never send the EOT")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="seconds to wait for each answer")
def simulate_analyser(
    protocol: str, path: Path, host: str, port: int, bad_checksum: tuple[int, ...], drop_eot: bool, timeout: float
) -> None:
    """Replay a sample file as a lab analyser over TCP and print what the host answered."""
    sample = path.read_bytes()
    if protocol == "astm":
        faults = Faults(bad_checksum=frozenset(bad_checksum), drop_eot=drop_eot)
        lines = asyncio.run(replay_astm(sample, host, port, faults, timeout=timeout))
    else:
        lines = asyncio.run(replay_hl7(sample, host, port, timeout=timeout))
    for line in lines:
        click.echo(line)


def register(cli: click.Group) -> None:
    simulate_group(cli).add_command(simulate_analyser)
