"""Simulated remote systems: what every plugin's simulator shares.

Use it when a plugin ships a simulator of the system its adapter talks to (an insurance centre,
an invoice platform, a PACS's REST side), served over real HTTP so that tests, demos and
benchmarks drive the real adapter, transport and breaker, and faults can be injected from the
test or from another process. The plugin subclasses `Simulator`, gives it its routes and its
`Fault` subclass, and plays its own fault kinds; this module supplies the rest:

- `Fault`: one misbehaviour for the next `count` calls aimed at a `target` (a transaction code,
  a method name; `ANY` for every call). A subclass names the target in its system's words
  (`infno`, `method`) and adds what its own kinds need (an error text, a result code).
- `FaultQueue`: faults in the order injected; `take(key)` uses up the first one aimed at `key`.
- `Simulator`: the ASGI app: `inject()`, `stop()`, `POST /_sim/faults` (the fault's fields as
  JSON), and the kinds any remote system can show: `slow` (answer `delay` seconds late; `stop()`
  releases it at once), `drop` (process the call, then close the connection unanswered: the
  work is done, its answer lost) and `drop_before` (close unanswered without processing).
- `SimulatorServer`: a `LocalServer` that calls the simulator's `stop()` as it stops, so held
  answers do not delay shutdown.

Not for peers that do not speak HTTP (MLLP, ASTM): those can still use `Fault` and `FaultQueue`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import KW_ONLY, asdict, dataclass
from typing import Any, Generic, TypeVar

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from engine.serving import LocalServer

log = structlog.get_logger(__name__)

ANY = "*"
FAULTS_PATH = "/_sim/faults"
SLOW, DROP, DROP_BEFORE = "slow", "drop", "drop_before"
_ABORT = "hisbridge.simulation.abort"


@dataclass
class Fault:
    """Misbehave on the next `count` calls aimed at `target`: `kind` says how, `delay` is how
    late a `slow` answer comes, `status` the HTTP status of a kind that answers one.

    Everything but `kind` is keyword-only, so a subclass's own fields follow `kind` in
    position (`Fault("drop", "1101")` aims at 1101 when the subclass's first field is the
    target). The base aims at every call; a subclass overrides `target`.
    """

    kind: str
    _: KW_ONLY
    count: int = 1
    delay: float = 0.0
    status: int = 502

    @property
    def target(self) -> str:
        return ANY


FaultT = TypeVar("FaultT", bound=Fault)


class FaultQueue(Generic[FaultT]):
    """Injected faults, first in first used; a fault leaves the queue when its count is spent."""

    def __init__(self) -> None:
        self._faults: list[FaultT] = []

    def inject(self, fault: FaultT) -> None:
        self._faults.append(fault)

    def take(self, key: str) -> FaultT | None:
        """The first fault aimed at `key` (or at any call), with one use counted; None if none is."""
        for fault in self._faults:
            if fault.count > 0 and fault.target in (ANY, key):
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def __iter__(self) -> Iterator[FaultT]:
        return iter(list(self._faults))

    def __len__(self) -> int:
        return len(self._faults)


class Simulator(Generic[FaultT]):
    """Base of a simulated remote system as an ASGI app.

    The subclass passes its fault class and routes to `__init__` (a dataclass simulator does so
    from `__post_init__`), takes a fault per call with `self.faults.take(key)`, and lets
    `misbehave_before()` / `misbehave_after()` play the network kinds around its processing.
    """

    def __init__(self, fault_type: type[FaultT], routes: Sequence[BaseRoute]) -> None:
        self.faults: FaultQueue[FaultT] = FaultQueue()
        self._fault_type = fault_type
        self._stopping = asyncio.Event()
        self._app = Starlette(routes=[*routes, Route(FAULTS_PATH, self._add_fault, methods=["POST"])])

    def inject(self, fault: FaultT) -> None:
        self.faults.inject(fault)

    def stop(self) -> None:
        """Release answers held back by `slow` and unabortable `drop` faults (server shutdown)."""
        self._stopping.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_ABORT] = lambda: _abort_connection(send)
        await self._app(scope, receive, send)

    async def misbehave_before(self, fault: Fault | None, request: Request) -> Response | None:
        """Before processing: a `drop_before` fault closes the connection unanswered."""
        if fault is not None and fault.kind == DROP_BEFORE:
            return await self.drop(request)
        return None

    async def misbehave_after(self, fault: Fault | None, request: Request) -> Response | None:
        """After processing: `drop` closes the connection unanswered; `slow` holds the answer
        for `delay` seconds or until `stop()`, then lets the caller answer."""
        if fault is not None and fault.kind == DROP:
            return await self.drop(request)
        if fault is not None and fault.kind == SLOW:
            try:
                await asyncio.wait_for(self._stopping.wait(), fault.delay)
            except TimeoutError:
                pass
        return None

    async def drop(self, request: Request) -> Response:
        """Close the client's connection unanswered; the response returned is never sent."""
        if not request.scope[_ABORT]():
            await self._stopping.wait()  # no transport to abort (an in-process client): hold until shutdown
        for _ in range(3):
            await asyncio.sleep(0)  # let the server notice the lost connection
        return Response(b"", status_code=500)

    async def _add_fault(self, request: Request) -> Response:
        self.inject(self._fault_type(**await request.json()))
        return JSONResponse({"faults": [asdict(fault) for fault in self.faults]})


SimulatorT = TypeVar("SimulatorT", bound=Simulator[Any])


class SimulatorServer(LocalServer, Generic[SimulatorT]):
    """`async with SimulatorServer(simulator) as server:` serves it on a real socket (port 0
    picks a free port) until the block ends; `server.simulator` is the app, for injecting."""

    def __init__(self, simulator: SimulatorT, *, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(simulator, host=host, port=port, on_stop=simulator.stop)
        self.simulator = simulator


def _abort_connection(send: Send) -> bool:
    """Close the client's connection without an answer (uvicorn's response cycle holds the
    transport); False when there is none to close."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return False
    transport.abort()
    return True
