"""The E1381 link over real TCP sockets on localhost, with scripted and faulty peers."""

import asyncio
import contextlib

import pytest
from structlog.testing import capture_logs

from plugins.lis_device.astm.connection import AstmConnection
from plugins.lis_device.astm.e1381 import (
    E1381Link,
    E1381Timers,
    MessageSent,
    SendFailed,
    TransferAborted,
    TransferReceived,
)
from plugins.lis_device.astm.frames import build_frame, frames_for_message

ENQ, ACK, NAK, EOT = b"\x05", b"\x06", b"\x15", b"\x04"
RESULTS = b"H|\\^&|||SYN\rP|1||SYN-PAT-01\rO|1|BC1||^^^GLU\rR|1|^^^GLU|5.6|mmol/L\rL|1|N\r"
ORDERS = b"H|\\^&|||LIS\rP|1||SYN-PAT-02\rO|1|BC2||^^^K|R\rL|1|N\r"
FAST = E1381Timers(
    sender_reply=0.5,
    receiver_idle=0.3,
    busy_retry=0.05,
    host_contention_hold=0.2,
    instrument_contention_retry=0.05,
)


class Host:
    """A listening host: one AstmConnection per accepted socket; inbound events kept."""

    def __init__(self, timers: E1381Timers = FAST) -> None:
        self.timers = timers
        self.inbound: asyncio.Queue = asyncio.Queue()
        self.connections: list[AstmConnection] = []
        self.connected = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer) -> None:
        connection = AstmConnection(reader, writer, E1381Link(timers=self.timers), self.inbound.put)
        self.connections.append(connection)
        self.connected.set()
        try:
            await connection.run()
        finally:
            await connection.close()

    async def stop(self) -> None:
        self.server.close()
        for connection in self.connections:
            await connection.close()
        await self.server.wait_closed()


@contextlib.asynccontextmanager
async def host_and_socket(timers: E1381Timers = FAST):
    host = Host(timers)
    port = await host.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield host, reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        await host.stop()


async def expect(reader: asyncio.StreamReader, data: bytes) -> None:
    assert await asyncio.wait_for(reader.readexactly(len(data)), 2) == data


async def next_inbound(host: Host):
    return await asyncio.wait_for(host.inbound.get(), 2)


async def test_instrument_sends_results_to_host_over_tcp():
    host = Host()
    port = await host.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    instrument = AstmConnection(
        reader, writer, E1381Link(has_priority=True, timers=FAST), asyncio.Queue().put
    )
    runner = asyncio.create_task(instrument.run())
    try:
        outcome = await asyncio.wait_for(instrument.send(RESULTS), 2)
        assert isinstance(outcome, MessageSent)
        received = await next_inbound(host)
        assert isinstance(received, TransferReceived) and received.text == RESULTS
        assert received.transcript == outcome.transcript
    finally:
        await instrument.close()
        await runner
        await host.stop()


async def test_split_and_merged_packets():
    frames = frames_for_message(RESULTS)
    wire = ENQ + b"".join(frames) + EOT
    async with host_and_socket() as (host, reader, writer):
        for position in range(0, len(wire), 3):
            writer.write(wire[position : position + 3])
            await writer.drain()
        assert (await next_inbound(host)).text == RESULTS
        writer.write(wire + wire)  # two whole transfers in one write
        await writer.drain()
        assert (await next_inbound(host)).text == RESULTS
        assert (await next_inbound(host)).text == RESULTS
        await expect(reader, ACK * (len(frames) + 1) * 3)


async def test_bad_checksum_then_good_retransmission():
    first, second, *rest = frames_for_message(RESULTS)
    damaged = second[:-4] + b"00" + second[-2:]
    async with host_and_socket() as (host, reader, writer):
        writer.write(ENQ)
        await expect(reader, ACK)
        writer.write(first)
        await expect(reader, ACK)
        writer.write(damaged)
        await expect(reader, NAK)
        writer.write(second)
        await expect(reader, ACK)
        for frame in rest:
            writer.write(frame)
            await expect(reader, ACK)
        writer.write(EOT)
        received = await next_inbound(host)
        assert received.text == RESULTS
        assert damaged + NAK + second + ACK in received.transcript


async def test_six_refused_frames_abort_the_host_download():
    async with host_and_socket() as (host, reader, writer):
        await asyncio.wait_for(host.connected.wait(), 2)
        sending = asyncio.create_task(host.connections[0].send(ORDERS))
        await expect(reader, ENQ)
        writer.write(ACK)
        first = frames_for_message(ORDERS)[0]
        for _ in range(6):
            await expect(reader, first)
            writer.write(NAK)
        await expect(reader, EOT)
        outcome = await asyncio.wait_for(sending, 2)
        assert isinstance(outcome, SendFailed) and outcome.reason == "frame refused 6 times"


async def test_receiver_timeout_when_the_instrument_goes_silent():
    async with host_and_socket() as (host, reader, writer):
        writer.write(ENQ + build_frame(1, b"H|\\^&\r", final=True))
        await expect(reader, ACK + ACK)
        aborted = await next_inbound(host)
        assert isinstance(aborted, TransferAborted)
        assert aborted.reason.startswith("receiver timeout")


async def test_sender_timeout_when_the_instrument_never_answers_enq():
    async with host_and_socket() as (host, reader, _writer):
        await asyncio.wait_for(host.connected.wait(), 2)
        outcome = await asyncio.wait_for(host.connections[0].send(ORDERS), 2)
        assert isinstance(outcome, SendFailed) and outcome.reason == "no reply to ENQ"
        await expect(reader, ENQ + EOT)


async def test_contention_instrument_first_then_host_download():
    host = Host()
    port = await host.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    instrument_inbound: asyncio.Queue = asyncio.Queue()
    instrument = AstmConnection(
        reader, writer, E1381Link(has_priority=True, timers=FAST), instrument_inbound.put
    )
    runner = asyncio.create_task(instrument.run())
    try:
        await asyncio.wait_for(host.connected.wait(), 2)
        # Both queue a message in the same loop turn, so both ENQs cross on the wire.
        with capture_logs() as logs:
            host_send = asyncio.create_task(host.connections[0].send(ORDERS))
            instrument_send = asyncio.create_task(instrument.send(RESULTS))
            host_outcome, instrument_outcome = await asyncio.wait_for(
                asyncio.gather(host_send, instrument_send), 3
            )
        assert "astm_contention_host_yields" in [entry["event"] for entry in logs]
        assert isinstance(instrument_outcome, MessageSent)
        assert isinstance(host_outcome, MessageSent)
        assert (await next_inbound(host)).text == RESULTS
        received = await asyncio.wait_for(instrument_inbound.get(), 2)
        assert received.text == ORDERS
    finally:
        await instrument.close()
        await runner
        await host.stop()


async def test_pending_send_fails_when_the_peer_disconnects():
    async with host_and_socket() as (host, reader, writer):
        await asyncio.wait_for(host.connected.wait(), 2)
        sending = asyncio.create_task(host.connections[0].send(ORDERS))
        await expect(reader, ENQ)
        writer.close()
        outcome = await asyncio.wait_for(sending, 2)
        assert isinstance(outcome, SendFailed)


@pytest.mark.parametrize("chunk", [1, 7, 4096])
async def test_gb18030_text_survives_the_link(chunk):
    records = "H|\\^&|||SYN\rR|1|^^^GLU|5.6|\u6beb\u6469\u5c14/\u5347\rL|1|N\r".encode("gb18030")
    wire = ENQ + b"".join(frames_for_message(records)) + EOT
    async with host_and_socket() as (host, reader, writer):
        for position in range(0, len(wire), chunk):
            writer.write(wire[position : position + chunk])
        await writer.drain()
        assert (await next_inbound(host)).text.decode("gb18030").count("\u6beb\u6469\u5c14") == 1
        await expect(reader, ACK * 4)
