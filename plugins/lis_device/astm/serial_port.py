"""ASTM over a serial line (RS-232, USB-serial): source kind `astm_serial`.

pyserial opens the port and sets baud rate, data bits, parity and stop bits; the open file
descriptor is then served by asyncio's pipe transports (they accept character devices),
so the same `AstmSession` runs on a serial line as on TCP. A port that cannot be opened or
goes away (a USB adapter unplugged, EIO when the far end hangs up) is reopened every
`reopen_interval` seconds.

    source:
      kind: astm_serial
      config: {port: /dev/ttyUSB0, baudrate: 9600, parity: N, charset: gb18030}
"""

from __future__ import annotations

import asyncio
import os
from typing import ClassVar, Literal

import serial  # type: ignore[import-untyped]  # pyserial ships no type hints
import structlog
from pydantic import Field

from engine.sources import SourceBinding
from plugins.lis_device.astm.source import AstmLinkKeeper, AstmSourceConfig

log = structlog.get_logger(__name__)

_PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


class AstmSerialConfig(AstmSourceConfig):
    port: str = Field(description="serial device, e.g. /dev/ttyUSB0 or /dev/ttyS1")
    baudrate: int = Field(9600, gt=0, description="bits per second, as set on the analyser")
    bytesize: Literal[7, 8] = Field(8, description="data bits")
    parity: Literal["N", "E", "O"] = Field("N", description="none, even or odd")
    stopbits: Literal[1, 2] = Field(1, description="stop bits")
    reopen_interval: float = Field(5.0, gt=0, description="seconds between attempts to (re)open the port")


async def byte_streams(fd: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.ReadTransport]:
    """Stream reader and writer over a character device's file descriptor (a serial port or
    a pty end). The descriptor is duplicated, so the caller still closes its own; close
    the writer and the returned read transport when done."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    read_file = os.fdopen(os.dup(fd), "rb", buffering=0)
    read_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), read_file)
    write_file = os.fdopen(os.dup(fd), "wb", buffering=0)
    write_transport, write_protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), write_file
    )
    writer = asyncio.StreamWriter(write_transport, write_protocol, reader, loop)
    return reader, writer, read_transport


class AstmSerial(AstmLinkKeeper):
    """`source: {kind: astm_serial, config: {port: /dev/ttyUSB0, baudrate: 9600}}`"""

    kind: ClassVar[str] = "astm_serial"
    Config = AstmSerialConfig
    description: ClassVar[str] = "ASTM E1381/E1394 from an analyser on a serial port; ACK after store"

    def __init__(self, config: AstmSerialConfig, binding: SourceBinding) -> None:
        super().__init__(config, binding)
        self.config: AstmSerialConfig = config
        self.opened = asyncio.Event()

    def _open(self) -> serial.Serial:
        config = self.config
        return serial.Serial(
            config.port,
            baudrate=config.baudrate,
            bytesize=config.bytesize,
            parity=_PARITY[config.parity],
            stopbits=config.stopbits,
            timeout=0,
        )

    async def keep_linked(self) -> None:
        while True:
            try:
                port = self._open()
            except (serial.SerialException, OSError) as exc:
                log.warning(
                    "astm serial port unavailable; retrying",
                    channel=self.binding.channel,
                    port=self.config.port,
                    error=str(exc),
                    retry_in=self.config.reopen_interval,
                )
                await asyncio.sleep(self.config.reopen_interval)
                continue
            try:
                reader, writer, read_transport = await byte_streams(port.fileno())
                try:
                    self.opened.set()
                    await self.serve(reader, writer, self.config.port)
                finally:
                    read_transport.close()
            finally:
                self.opened.clear()
                port.close()
            log.info("astm serial port closed; reopening", channel=self.binding.channel, port=self.config.port)
            await asyncio.sleep(self.config.reopen_interval)
