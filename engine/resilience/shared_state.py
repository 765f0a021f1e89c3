"""Breaker state shared by several engine nodes through Redis (`breakers.shared_state`).

Every node keeps answering from its own in-memory copy of each breaker, so the check on a
call's hot path never waits on Redis: a closed breaker with no failures counted costs no
Redis round trip at all. Redis is asked only when something happens: a failure (counted
across the cluster; the node whose failure reaches `fail_max` opens the breaker for all), a
success after failures (resets the shared count), a probe (the reset timeout elapsed: one
node across the cluster gets the lease, `SET NX PX`), the probe's outcome. Each change is
published on a channel every node follows, so an open or a close reaches the others within
a round trip; a periodic re-read catches anything a dropped subscription missed.

pybreaker's own `CircuitRedisStorage` is not used: it calls a blocking Redis client on
every state read (on the event loop, on every call), its steps are separate commands (two
nodes can both trip, every node lets its own half-open call through), and when Redis is
down it answers "closed" and counts nothing, so no breaker could open during the outage.

When Redis does not answer (down, or slower than `timeout_seconds`) the breakers fall back
to their local state machines, one warning is logged, and the connection is retried every
`reconnect_seconds`; once back, each breaker adopts the shared state again (a breaker that
opened locally meanwhile opens the shared one, so the others learn the destination died).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from engine.config import secrets as config_secrets
from engine.config.model import SharedBreakerState
from engine.resilience import shared_scripts as scripts

log = structlog.get_logger(__name__)

SharedBreakerStateName = Literal["closed", "open", "half_open"]
AdmissionKey: TypeAlias = tuple[str, int]
"""(epoch, generation) a call was admitted under; its outcome counts only while it holds."""

_REDIS_DOWN = (RedisError, OSError, asyncio.TimeoutError)


class SharedStateUnavailable(Exception):
    """Redis did not answer; the caller falls back to its local breaker."""


@dataclass(frozen=True)
class SharedView:
    """One breaker as Redis holds it, with the Redis clock when it was read."""

    verdict: str
    state: SharedBreakerStateName
    epoch: str
    generation: int
    failures: int
    opened_ms: int
    since_ms: int
    reason: str
    node: str
    probe_node: str
    probe_ttl_ms: int
    now_ms: int

    @classmethod
    def from_reply(cls, reply: str | list[Any]) -> "SharedView":
        """From a script's JSON answer, or the snapshot inside a published change."""
        items = json.loads(reply) if isinstance(reply, str) else reply
        values = dict(zip(scripts.SNAPSHOT_FIELDS, items, strict=True))
        for name in ("generation", "failures", "opened_ms", "since_ms", "probe_ttl_ms", "now_ms"):
            values[name] = int(values[name])
        return cls(**values)

    @property
    def key(self) -> AdmissionKey:
        return (self.epoch, self.generation)

    def replaces(self, older: "SharedView | None") -> bool:
        """Whether this view is at least as new as `older` (a late message is not)."""
        return older is None or older.epoch != self.epoch or self.generation >= older.generation

    def advances(self, older: "SharedView | None") -> bool:
        """Whether this view comes from a later transition than `older`."""
        return older is None or older.epoch != self.epoch or self.generation > older.generation


class SharedFollower(Protocol):
    """A breaker that follows its shared state (engine.resilience.breaker.DestinationBreaker)."""

    name: str

    def follow(self, view: SharedView) -> None: ...

    def opened_locally(self) -> str | None:
        """Why the breaker is open on its own (while Redis was away); None when it is not."""


def redis_url(settings: SharedBreakerState, base_dir: Path | None = None) -> str:
    """The configured URL, its secret resolved (raises ConfigError when it cannot be)."""
    if isinstance(settings.url, str):
        return settings.url
    return config_secrets.resolve(settings.url, base_dir)


def node_id() -> str:
    """Names this engine in Redis: host, process and a random part (two engines may share a process)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class SharedBreakerStates:
    """The Redis connection every breaker of one board shares, and the follower loop."""

    def __init__(self, settings: SharedBreakerState, url: str, *, node: str | None = None) -> None:
        self.settings = settings
        self.node = node or node_id()
        self.healthy = False
        self._down_reported = False
        self._channel = f"{settings.key_prefix}:changes"
        self._client = Redis.from_url(
            url, decode_responses=True, socket_timeout=settings.timeout_seconds,
            socket_connect_timeout=settings.timeout_seconds, retry=Retry(NoBackoff(), 0),
        )
        self._read = self._client.register_script(scripts.READ)
        self._failure = self._client.register_script(scripts.FAILURE)
        self._success = self._client.register_script(scripts.SUCCESS)
        self._probe = self._client.register_script(scripts.PROBE)
        self._release = self._client.register_script(scripts.RELEASE)
        self._open_if_closed = self._client.register_script(scripts.OPEN_IF_CLOSED)
        self._followers: dict[str, SharedFollower] = {}
        self._lost = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._spawned: set[asyncio.Task[Any]] = set()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, followers: Iterable[SharedFollower]) -> None:
        """Follow the shared state of `followers`. Waits for the first connection; when Redis
        is down already, the breakers start local and the loop keeps trying."""
        self._followers = {follower.name: follower for follower in followers}
        connected = asyncio.get_running_loop().create_future()
        self._loop_task = asyncio.create_task(self._follow_forever(connected), name="shared-breakers")
        await asyncio.wait([connected, self._loop_task], return_when=asyncio.FIRST_COMPLETED)

    async def aclose(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        while self._spawned:
            await asyncio.gather(*list(self._spawned), return_exceptions=True)
        self.healthy = False
        await self._client.aclose()

    def release_later(self, follower: SharedFollower) -> None:
        """Free the probe slot this node may hold, without making the caller wait (its probe
        ended neither well nor badly, or was cancelled)."""
        task = asyncio.ensure_future(self._release_quietly(follower))
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    async def _release_quietly(self, follower: SharedFollower) -> None:
        with contextlib.suppress(SharedStateUnavailable):
            follower.follow(await self.release(follower.name))

    # -- what breakers ask -----------------------------------------------------------------

    async def failure(self, name: str, admitted: AdmissionKey, fail_max: int, reason: str) -> SharedView:
        epoch, generation = admitted
        return await self._run(
            self._failure, name, epoch, str(generation), str(fail_max), reason, self.node
        )

    async def success(self, name: str, admitted: AdmissionKey) -> SharedView:
        epoch, generation = admitted
        return await self._run(self._success, name, epoch, str(generation), self.node)

    async def probe(self, name: str, reset_timeout: float) -> SharedView:
        """Ask for the cluster's one probe; the verdict says `probe` when this node got it,
        `closed` when the breaker closed meanwhile, `wait` or `busy` when refused."""
        lease_ms = round(self.settings.probe_lease_seconds * 1000)
        return await self._run(self._probe, name, str(round(reset_timeout * 1000)), str(lease_ms), self.node)

    async def release(self, name: str) -> SharedView:
        """Free the probe slot this node holds (its probe ended neither well nor badly)."""
        return await self._run(self._release, name, self.node)

    async def read(self, name: str) -> SharedView:
        return await self._run(self._read, name)

    async def _run(self, script: AsyncScript, name: str, *args: str) -> SharedView:
        if not self.healthy:
            raise SharedStateUnavailable(name)
        try:
            reply = await script(keys=self._keys(name), args=[self._channel, name, *args])
        except _REDIS_DOWN as exc:
            self._went_down(exc)
            raise SharedStateUnavailable(name) from exc
        return SharedView.from_reply(reply)

    def _keys(self, name: str) -> list[str]:
        return [f"{self.settings.key_prefix}:{name}", f"{self.settings.key_prefix}:{name}:probe"]

    # -- following the others ----------------------------------------------------------------

    async def _follow_forever(self, connected: asyncio.Future[None]) -> None:
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    await self._catch_up()
                    self._came_back()
                    if not connected.done():
                        connected.set_result(None)
                    await self._listen(pubsub)
            except _REDIS_DOWN as exc:
                self._went_down(exc)
            except Exception as exc:  # a bug here must not stop the following for good
                log.exception("following shared breaker state failed")
                self._went_down(exc)
            if not connected.done():
                connected.set_result(None)
            await asyncio.sleep(self.settings.reconnect_seconds)

    async def _listen(self, pubsub: PubSub) -> None:
        """Apply published changes until Redis fails; re-read everything now and then.

        Once a command failed (`_lost`), nothing more is applied, even when this connection
        still delivers: the breakers decide locally until `_catch_up` reconciles them.
        """
        loop = asyncio.get_running_loop()
        resync_at = loop.time() + self.settings.resync_seconds
        while True:
            wait = max(0.0, min(resync_at - loop.time(), self.settings.resync_seconds))
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
            if self._lost.is_set():
                return
            if message is not None:
                self._deliver(message["data"])
            if loop.time() >= resync_at:
                views = await self._read_all()
                if self._lost.is_set():
                    return
                for name, view in views:
                    self._followers[name].follow(view)
                resync_at = loop.time() + self.settings.resync_seconds

    async def _catch_up(self) -> None:
        """On (re)connecting: adopt every shared state; a breaker that opened on its own
        while Redis was away opens the shared one, unless that is open already."""
        for name, view in await self._read_all():
            follower = self._followers[name]
            reason = follower.opened_locally()
            if reason is not None and view.state == "closed":
                reply = await self._open_if_closed(
                    keys=self._keys(name), args=[self._channel, name, reason, self.node]
                )
                view = SharedView.from_reply(reply)
            follower.follow(view)

    async def _read_all(self) -> list[tuple[str, SharedView]]:
        async with self._client.pipeline(transaction=False) as pipe:
            names = sorted(self._followers)
            for name in names:
                await self._read(keys=self._keys(name), args=[self._channel, name], client=pipe)
            replies = await pipe.execute()
        return [(name, SharedView.from_reply(reply)) for name, reply in zip(names, replies, strict=True)]

    def _deliver(self, data: str) -> None:
        try:
            name, reply = json.loads(data)
            view = SharedView.from_reply(reply)
        except (ValueError, TypeError) as exc:
            log.warning("unreadable shared breaker change ignored", error=str(exc))
            return
        follower = self._followers.get(name)
        if follower is not None:  # another node may have breakers this one lacks
            follower.follow(view)

    def _went_down(self, exc: BaseException) -> None:
        self._lost.set()
        self.healthy = False
        if not self._down_reported:
            self._down_reported = True
            log.warning(
                "shared breaker state unreachable: breakers fall back to this node's own state",
                error=f"{type(exc).__name__}: {exc}", retry_every=self.settings.reconnect_seconds,
            )

    def _came_back(self) -> None:
        self._lost.clear()
        self.healthy = True
        if self._down_reported:
            self._down_reported = False
            log.warning("shared breaker state reachable again", node=self.node)
        else:
            log.info("shared breaker state in use", node=self.node, breakers=len(self._followers))

