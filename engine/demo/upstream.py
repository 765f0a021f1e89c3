"""A real local HTTP upstream for tests, the demo and benchmarks.

It answers JSON on every path and can be told to misbehave at run time:

- `normal`: 200 with `{"ok": true, "seq": n, "echo": <the request body>}` (or a set reply)
- `fail`:   503 with a JSON error, as a gateway in trouble answers
- `slow`:   waits `delay` seconds, then answers as normal
- `reject`: 400 with `{"error": ..., "code": "E400"}`, as a centre rejecting a request
- `down`:   the server is stopped (connections refused) and can start again on the same port

Every request is recorded with the status it got, so a test can prove a message reached
the upstream exactly once. In process: `async with Upstream() as up: ... up.url`.
As a subprocess: `python -m engine.demo.upstream --port 0` prints the URL on its first
line; control it with `POST /_control {"mode", "delay", "reply", "down_for", "reset"}` and
read `GET /_received`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from engine.config.model import LoggingSettings
from engine.logging import configure_logging
from engine.serving import LocalServer, serve_until_signalled

log = structlog.get_logger(__name__)

Mode = Literal["normal", "fail", "slow", "reject", "down"]
MODES: tuple[str, ...] = ("normal", "fail", "slow", "reject", "down")

Scope = dict[str, Any]
Receive = Any
Send = Any


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "body": self.body.decode("utf-8", errors="replace"),
        }


@dataclass
class UpstreamState:
    mode: Mode = "normal"
    delay: float = 0.0
    reply: Any = None
    received: list[ReceivedRequest] = field(default_factory=list)


class Upstream:
    """The upstream server; its state survives `stop()`/`start()` and so does its port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.state = UpstreamState()
        self._stopping = asyncio.Event()  # lets `slow` answers end at once when stopping
        self._server = LocalServer(self._app, host=host, port=port, on_stop=self._stopping.set)
        self._background: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server.running

    # -- controls ----------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self.state.mode if self.running else "down"

    def set_mode(self, mode: Mode, *, delay: float | None = None, reply: Any = None) -> None:
        """Change how requests are answered (`down` is `stop()`, not a mode to set)."""
        if mode not in MODES or mode == "down":
            raise ValueError(f"mode must be one of normal, fail, slow, reject; got {mode!r}")
        self.state.mode = mode
        if delay is not None:
            self.state.delay = delay
        if reply is not None:
            self.state.reply = reply

    @property
    def received(self) -> list[ReceivedRequest]:
        return self.state.received

    @property
    def count(self) -> int:
        return len(self.state.received)

    def accepted_bodies(self) -> list[bytes]:
        """Bodies of the requests answered 2xx, in arrival order."""
        return [r.body for r in self.state.received if r.status is not None and r.status < 300]

    def reset(self) -> None:
        self.state.received.clear()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping.clear()
        await self._server.start()
        self.port = self._server.port
        log.debug("upstream started", url=self.url)

    async def stop(self) -> None:
        """Stop listening and cut open connections; requests then get connection refused."""
        await self._server.stop()

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.stop()

    async def __aenter__(self) -> Upstream:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _go_down(self, seconds: float) -> None:
        await self.stop()
        await asyncio.sleep(seconds)
        await self.start()

    # -- the ASGI application -----------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        path = scope["path"]
        if path == "/_control":
            status, answer = self._control(body)
        elif path == "/_received":
            status, answer = 200, {
                "count": self.count,
                "mode": self.state.mode,
                "requests": [r.as_json() for r in self.state.received],
            }
        else:
            request = ReceivedRequest(
                method=scope["method"],
                path=path,
                headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
                body=body,
            )
            self.state.received.append(request)
            status, answer = await self._answer(request)
            request.status = status
        await _send_json(send, status, answer)

    async def _answer(self, request: ReceivedRequest) -> tuple[int, Any]:
        state = self.state
        if state.mode == "fail":
            return 503, {"error": "upstream failing (mode fail)", "code": "E503"}
        if state.mode == "reject":
            return 400, {"error": "request rejected (mode reject)", "code": "E400"}
        if state.mode == "slow":
            try:
                await asyncio.wait_for(self._stopping.wait(), state.delay)
            except TimeoutError:
                pass
        if state.reply is not None:
            return 200, state.reply
        return 200, {"ok": True, "seq": self.count, "echo": _decode(request.body)}

    def _control(self, body: bytes) -> tuple[int, Any]:
        try:
            command = json.loads(body or b"{}")
            if command.get("reset"):
                self.reset()
            mode = command.get("mode")
            if mode == "down":
                task = asyncio.create_task(self._go_down(float(command.get("down_for", 1.0))))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            elif mode is not None or "delay" in command or "reply" in command:
                self.set_mode(mode or self.state.mode, delay=command.get("delay"), reply=command.get("reply"))
        except (ValueError, TypeError, AttributeError) as exc:
            return 400, {"error": str(exc)}
        return 200, {"mode": mode or self.state.mode, "delay": self.state.delay, "count": self.count}


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, answer: Any) -> None:
    payload = json.dumps(answer, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


async def _serve_until_signalled(host: str, port: int) -> None:
    upstream = Upstream(host, port)
    await serve_until_signalled(upstream._server, lambda server: server.url)
    await upstream.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="hisbridge demo upstream (JSON over HTTP)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    configure_logging(LoggingSettings(level=args.log_level), json_lines=False)  # stderr
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve_until_signalled(args.host, args.port))
    else:
        uvloop.run(_serve_until_signalled(args.host, args.port))


if __name__ == "__main__":
    main()
