"""Serve a PlatformSimulator on a real socket (port 0 picks a free port)."""

from __future__ import annotations

from engine.serving import LocalServer
from plugins.e_invoice.simulator.app import SERVICE, PlatformSimulator


class PlatformServer(LocalServer):
    """`async with PlatformServer(sim) as server:` serves until the block ends."""

    def __init__(self, simulator: PlatformSimulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(simulator, host=host, port=port, on_stop=simulator.stop)
        self.simulator = simulator

    @property
    def base_url(self) -> str:
        """What the adapter's `base_url` should be."""
        return self.url + SERVICE
