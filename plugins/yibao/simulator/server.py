"""Run a CentreSimulator on a real socket (port 0 picks a free port)."""

from __future__ import annotations

from engine.serving import LocalServer
from plugins.yibao.simulator.app import CentreSimulator


class SimulatorServer(LocalServer):
    """`async with SimulatorServer(sim) as server:` serves on 127.0.0.1 until the block ends."""

    def __init__(self, simulator: CentreSimulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(simulator, host=host, port=port, on_stop=simulator.stop)
        self.simulator = simulator
