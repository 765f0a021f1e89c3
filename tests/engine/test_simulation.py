"""engine.simulation: the fault queue, and a small simulator served on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import simulation


@dataclass
class EchoFault(simulation.Fault):
    operation: str = simulation.ANY
    text: str = "refused"

    @property
    def target(self) -> str:
        return self.operation


@dataclass
class EchoSimulator(simulation.Simulator[EchoFault]):
    """Answers `POST /echo/{operation}` with the operation; `refuse` is its own fault kind."""

    processed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(EchoFault, [Route("/echo/{operation}", self._echo, methods=["POST"])])

    async def _echo(self, request: Request) -> Response:
        operation = request.path_params["operation"]
        fault = self.faults.take(operation)
        if (dropped := await self.misbehave_before(fault, request)) is not None:
            return dropped
        if fault is not None and fault.kind == "refuse":
            return JSONResponse({"error": fault.text}, status_code=fault.status)
        self.processed.append(operation)
        if (dropped := await self.misbehave_after(fault, request)) is not None:
            return dropped
        return JSONResponse({"echo": operation})


@pytest.fixture
async def server() -> AsyncIterator[simulation.SimulatorServer[EchoSimulator]]:
    async with simulation.SimulatorServer(EchoSimulator()) as running:
        yield running


@pytest.fixture
async def client(server: simulation.SimulatorServer[EchoSimulator]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield http


# --- the queue -----------------------------------------------------------------------------------


def test_a_fault_is_taken_by_its_target_or_by_any_call_in_injection_order() -> None:
    queue: simulation.FaultQueue[EchoFault] = simulation.FaultQueue()
    refuse, slow = EchoFault("refuse", "issue", count=2), EchoFault("slow")
    queue.inject(refuse)
    queue.inject(slow)
    assert queue.take("query") is slow
    assert queue.take("query") is None
    assert list(queue) == [refuse]
    assert [queue.take("issue"), queue.take("issue"), queue.take("issue")] == [refuse, refuse, None]
    assert len(queue) == 0 and refuse.count == 0


def test_the_base_fault_aims_at_every_call() -> None:
    queue: simulation.FaultQueue[simulation.Fault] = simulation.FaultQueue()
    queue.inject(simulation.Fault("drop", count=2))
    assert [f is not None for f in (queue.take("a"), queue.take("b"), queue.take("c"))] == [True, True, False]


def test_only_kind_is_positional_in_the_base_so_a_subclass_target_comes_second() -> None:
    fault = EchoFault("refuse", "issue", status=422)
    assert (fault.operation, fault.target, fault.status, fault.count) == ("issue", "issue", 422, 1)
    with pytest.raises(TypeError):
        simulation.Fault("drop", 2)  # type: ignore[call-arg]


# --- a simulator on a socket ---------------------------------------------------------------------


async def test_faults_injected_over_http_are_played_by_the_subclass(
    server: simulation.SimulatorServer[EchoSimulator], client: httpx.AsyncClient
) -> None:
    injected = await client.post(simulation.FAULTS_PATH, json={"kind": "refuse", "operation": "issue", "status": 409})
    assert injected.json() == {"faults": [
        {"kind": "refuse", "count": 1, "delay": 0.0, "status": 409, "operation": "issue", "text": "refused"},
    ]}
    assert (await client.post("/echo/query")).json() == {"echo": "query"}
    refused = await client.post("/echo/issue")
    assert (refused.status_code, refused.json()) == (409, {"error": "refused"})
    assert (await client.post("/echo/issue")).json() == {"echo": "issue"}
    assert len(server.simulator.faults) == 0


async def test_drop_processes_the_call_then_closes_the_connection_unanswered(
    server: simulation.SimulatorServer[EchoSimulator], client: httpx.AsyncClient
) -> None:
    server.simulator.inject(EchoFault("drop", "issue"))
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post("/echo/issue")
    assert server.simulator.processed == ["issue"]
    assert (await client.post("/echo/issue")).json() == {"echo": "issue"}


async def test_drop_before_closes_the_connection_without_processing(
    server: simulation.SimulatorServer[EchoSimulator], client: httpx.AsyncClient
) -> None:
    server.simulator.inject(EchoFault("drop_before", count=2))
    for operation in ("issue", "query"):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"/echo/{operation}")
    assert server.simulator.processed == []
    assert (await client.post("/echo/query")).json() == {"echo": "query"}


async def test_a_slow_answer_comes_after_its_delay(
    server: simulation.SimulatorServer[EchoSimulator], client: httpx.AsyncClient
) -> None:
    server.simulator.inject(EchoFault("slow", delay=0.01))
    assert (await client.post("/echo/issue")).json() == {"echo": "issue"}
    assert server.simulator.processed == ["issue"]


async def test_stopping_the_server_releases_a_held_slow_answer() -> None:
    """The hour-long delay would outlast the server's graceful shutdown, which would then cut
    the request off; only stop() releasing it lets the answer through."""
    simulator = EchoSimulator()
    async with simulation.SimulatorServer(simulator) as server:
        simulator.inject(EchoFault("slow", delay=3600))
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            answer = asyncio.create_task(http.post("/echo/issue"))
            while not simulator.processed:
                await asyncio.sleep(0.005)
            await server.stop()
            assert (await answer).json() == {"echo": "issue"}


async def test_without_a_transport_to_abort_a_drop_holds_until_stop() -> None:
    simulator = EchoSimulator()
    simulator.inject(EchoFault("drop"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator), base_url="http://sim") as http:
        answer = asyncio.create_task(http.post("/echo/issue"))
        while not simulator.processed:
            await asyncio.sleep(0.005)
        assert not answer.done()
        simulator.stop()
        assert (await answer).status_code == 500
