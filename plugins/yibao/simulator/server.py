"""Run a CentreSimulator on a real socket (port 0 picks a free port)."""

from __future__ import annotations

from engine import simulation
from plugins.yibao.simulator.app import CentreSimulator


class SimulatorServer(simulation.SimulatorServer[CentreSimulator]):
    """`async with SimulatorServer(sim) as server:` serves on 127.0.0.1 until the block ends."""
