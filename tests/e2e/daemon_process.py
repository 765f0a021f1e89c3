"""A daemon in its own process, started with the real command line, for crash tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.harness import HIS_TOKEN, OPERATOR_TOKEN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DaemonProcess:
    def __init__(self, conf: Path, port: int) -> None:
        self.conf = conf
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = conf.parent / f"daemon-{port}.log"

    async def start(self) -> None:
        env = {**os.environ, "E2E_HIS_TOKEN": HIS_TOKEN, "E2E_OPERATOR_TOKEN": OPERATOR_TOKEN}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "engine.cli", "--conf", str(self.conf), "run"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.conf.parent,
            )
        async with httpx.AsyncClient(timeout=1) as client:
            for _ in range(300):
                if self.process.poll() is not None:
                    raise RuntimeError(f"daemon exited: {self.log.read_text()[-2000:]}")
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"daemon did not become healthy: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(20)
