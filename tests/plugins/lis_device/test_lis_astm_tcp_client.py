"""astm_tcp_client: the engine connects out to an analyser that listens, and comes back
after the analyser drops the connection or was not up yet."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from engine.adapters.memory import memory_peer, reset_memory_peers
from plugins.lis_device.astm.frames import frames_for_message, scan_transcript
from plugins.lis_device.simulator.analyser import AstmAnalyser
from tests.plugins.lis_device.lis_engine import eventually, start_engine, stored_raws


def results(barcode: str) -> bytes:
    return (
        b"H|\\^&|||SYN-LISTENER\rP|1||SYN-PAT-09\r"
        + f"O|1|{barcode}||^^^K\rR|1|^^^K|4.1|mmol/L||N||F\rL|1|N\r".encode()
    )


@pytest.fixture(autouse=True)
def fresh_peers() -> None:
    reset_memory_peers()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_engine_connects_out_and_reconnects(tmp_path: Path) -> None:
    port = free_port()
    connected: asyncio.Queue[AstmAnalyser] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await connected.put(AstmAnalyser(reader, writer, reply_timeout=5.0))

    engine = await start_engine(
        tmp_path,
        "astm_tcp_client",
        host="127.0.0.1",
        port=port,
        reconnect_initial=0.05,
        reconnect_max=0.2,
        connect_timeout=1.0,
    )
    server = None
    try:
        # nothing listens yet: the source keeps retrying with backoff
        await asyncio.sleep(0.15)
        server = await asyncio.start_server(on_connect, "127.0.0.1", port)
        first = await asyncio.wait_for(connected.get(), 5)
        assert (await first.send(frames_for_message(results("BC-C1")))).completed
        await first.close()  # the analyser drops the line
        second = await asyncio.wait_for(connected.get(), 5)
        assert (await second.send(frames_for_message(results("BC-C2")))).completed
        await second.close()

        await eventually(lambda: len(memory_peer("lis").delivered) == 2)
        raws = await stored_raws(engine)
        assert [scan_transcript(raw.body).text for raw in raws] == [results("BC-C1"), results("BC-C2")]
        assert engine.sources[0].connections >= 2  # type: ignore[attr-defined]
    finally:
        await engine.stop()
        while not connected.empty():
            await connected.get_nowait().close()
        if server is not None:
            server.close()
            await server.wait_closed()
