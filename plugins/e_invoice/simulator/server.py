"""Serve a PlatformSimulator on a real socket (port 0 picks a free port)."""

from __future__ import annotations

from engine import simulation
from plugins.e_invoice.simulator.app import SERVICE, PlatformSimulator


class PlatformServer(simulation.SimulatorServer[PlatformSimulator]):
    """`async with PlatformServer(sim) as server:` serves until the block ends."""

    @property
    def base_url(self) -> str:
        """What the adapter's `base_url` should be."""
        return self.url + SERVICE
