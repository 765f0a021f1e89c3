"""Acts of `hisbridge demo`: each plugin tells its own story against the running daemon.

An act is registered through `hisbridge_register_demo_acts` and runs after the ones
registered before it. It starts the simulators it needs (on the ports its channels in
`conf/` point at), drives traffic through the daemon's API or listeners, prints what
happened through `stage.say`, and returns whether everything it promised held.
"""

from __future__ import annotations

import asyncio
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import httpx

if TYPE_CHECKING:
    from engine.daemon import Daemon


@dataclass
class DemoStage:
    """What an act gets: the running daemon, an HTTP client and the demo's voice."""

    daemon: Daemon
    http: httpx.AsyncClient
    say: Callable[[str], None]

    @property
    def his_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {os.environ['HISBRIDGE_HIS_TOKEN']}"}

    @property
    def operator_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {os.environ['HISBRIDGE_OPERATOR_TOKEN']}"}

    async def post(self, path: str, body: Any) -> httpx.Response:
        """POST JSON as HIS to the daemon's API, e.g. `post("/api/v1/channels/x", {...})`."""
        return await self.http.post(f"{self.daemon.url}{path}", json=body, headers=self.his_headers)

    async def get(self, path: str) -> httpx.Response:
        """GET from the daemon's API as an operator (payload routes need that role)."""
        return await self.http.get(f"{self.daemon.url}{path}", headers=self.operator_headers)

    def peer_address(self, channel: str, destination: int = 0) -> tuple[str, int]:
        """Host and port a channel's destination calls (its config's `url` or `base_url`, or
        `host` and `port`): where an act starts that peer's simulator, so the conf alone decides ports."""
        config = self.daemon.engine.channel(channel).destinations[destination].adapter.config
        fields = config.model_dump()
        url = fields.get("url") or fields.get("base_url")
        if url is not None:
            parsed = httpx.URL(str(url))
            return parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)
        return str(fields["host"]), int(fields["port"])

    @staticmethod
    async def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
        """Poll `condition` every 0.1 s until it holds or `seconds` pass; returns its last value."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return True
            await asyncio.sleep(0.1)
        return condition()


class DemoAct(ABC):
    """One story of the demo. `name` selects it (`hisbridge demo --act NAME`), `title`
    heads its output, `environment` holds demo values for the `$env` secrets its channels
    in `conf/` name (set only where the environment has none, before the config loads)."""

    name: ClassVar[str]
    title: ClassVar[str]
    environment: ClassVar[dict[str, str]] = {}

    @abstractmethod
    async def run(self, stage: DemoStage) -> bool:
        """Play the act; True when everything it claims (nothing lost, no duplicate) held."""
