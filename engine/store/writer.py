"""The group-commit writer: one thread, one transaction per group of many writes.

Async callers submit write operations (functions of a Connection). The writer thread takes
everything queued (up to `max_group`), runs it in one transaction and commits once, so
concurrent messages share each commit and its fsync. Then it resolves each caller's future
on the caller's event loop.

When any operation of a group fails, the group is rolled back and its operations are run
again one by one, each in its own transaction, so only the faulty operation's caller gets a
StoreError. When the commit itself fails, every caller of the group gets a StoreError and
nothing is re-run: the commit may have reached the disk, and a re-run could duplicate it.
Operations are executed in submission order, so one caller's writes commit in the order they
were made.

An operation object whose class has `run_together(connection, operations)` is executed
together with the consecutive operations of its class in the group (multi-row statements);
if that fails, the one-by-one re-run covers it like any other failure.

An *early* operation resolves its future as soon as it has executed, before the commit
(`create_message(wait=False)`). While every operation in the open transaction is early, the
writer keeps it open for up to `commit_delay` so that the next writes share its commit: a
lone sync caller then no longer waits for the fsync of the call before it. Its result must
therefore survive a re-run: an operation that returns generated ids must insert the same ids
when run again (see engine.store.writes.CreateMessage).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog

from engine.errors import StoreError

log = structlog.get_logger(__name__)

WriteFunction = Callable[[sa.Connection], Any]
DEFAULT_MAX_GROUP = 500
DEFAULT_COMMIT_DELAY = 0.01
"""Seconds a transaction holding only early writes stays open for more to join its commit."""


@dataclass
class _Operation:
    run: WriteFunction
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    early: bool
    resolved: bool = False


_STOP = object()


class GroupWriter:
    def __init__(
        self, engine: sa.Engine, *, max_group: int = DEFAULT_MAX_GROUP,
        commit_delay: float = DEFAULT_COMMIT_DELAY,
    ) -> None:
        self.engine = engine
        self._max_group = max_group
        self._commit_delay = commit_delay
        self._stopping = False
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="store-writer", daemon=True)
        self._closed = False
        self._thread.start()

    async def submit(self, run: WriteFunction, *, early: bool = False) -> Any:
        """Run `run(connection)` in the next group; return its result after the commit
        (or, when `early`, once it has executed)."""
        return await self.enqueue(run, early=early)

    def enqueue(self, run: WriteFunction, *, early: bool = False) -> asyncio.Future[Any]:
        """Queue `run(connection)` now and return the future `submit` would await; a caller
        that does not await it still has its write ordered before everything queued later."""
        if self._closed:
            raise StoreError("the message store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Operation(run, loop, future, early))
        return future

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    # --- writer thread ------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping:
            group = self._drain(self._queue.get())
            if group:
                self._run_group(group)

    def _drain(self, item: Any) -> list[_Operation]:
        """`item` and everything queued behind it, up to the group size; notes a stop."""
        group: list[_Operation] = []
        while True:
            if item is _STOP:
                self._stopping = True
                break
            group.append(item)
            if len(group) >= self._max_group:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        return group

    def _more_early_writes(self, group: list[_Operation], deadline: float) -> list[_Operation]:
        """While nobody waits for the open transaction's commit (every write in it is early),
        wait up to the deadline for more writes to share that commit and its fsync."""
        if self._stopping or len(group) >= self._max_group:
            return []
        if not all(operation.early for operation in group):
            return []
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return []
        try:
            item = self._queue.get(timeout=remaining)
        except queue.Empty:
            return []
        return self._drain(item)

    def _run_group(self, group: list[_Operation]) -> None:
        # A connection per group: the pool's pre-ping then replaces one the database dropped
        # while the writer was idle (a PostgreSQL restart), instead of failing the next write.
        try:
            connection = self.engine.connect()
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            _settle([(operation, None, exc) for operation in group])
            return
        with connection:
            self._run_group_on(connection, group)

    def _run_group_on(self, connection: sa.Connection, group: list[_Operation]) -> None:
        results: list[Any] = []
        transaction = connection.begin()
        deadline = time.monotonic() + self._commit_delay
        batch = list(group)
        try:
            while batch:
                for run in _runs_together(batch):
                    run_results = _execute(connection, run)
                    results.extend(run_results)
                    _settle([(operation, result, None)
                             for operation, result in zip(run, run_results, strict=True) if operation.early])
                batch = self._more_early_writes(group, deadline)
                group.extend(batch)
        except Exception as exc:  # noqa: BLE001 - any failure: isolate the faulty write
            transaction.rollback()
            if len(group) == 1:
                _settle([(group[0], None, exc)])
                return
            log.warning("store group failed, retrying one by one", size=len(group),
                        error=str(exc))
            _settle([self._run_alone(connection, operation) for operation in group])
            return
        try:
            transaction.commit()
        except Exception as exc:  # noqa: BLE001 - every caller of the group must hear of it
            # The commit may or may not have reached the disk, so running the writes again
            # could duplicate them: fail them all and let the callers decide.
            log.error("store commit failed", size=len(group), error=str(exc))
            _settle([(operation, None, exc) for operation in group])
            return
        _settle([(operation, result, None) for operation, result in zip(group, results, strict=True)])

    def _run_alone(self, connection: sa.Connection, operation: _Operation) -> _Outcome:
        try:
            with connection.begin():
                return (operation, operation.run(connection), None)
        except Exception as exc:  # noqa: BLE001 - becomes this caller's StoreError
            return (operation, None, exc)


_Outcome = tuple[_Operation, Any, Exception | None]


def _runs_together(group: list[_Operation]) -> list[list[_Operation]]:
    """Split a group into runs of consecutive operations that can execute as one: the same
    operation class offering `run_together`. Order across runs is kept."""
    runs: list[list[_Operation]] = []
    for operation in group:
        previous = runs[-1][0].run if runs else None
        if previous is not None and type(previous) is type(operation.run) and hasattr(
            previous, "run_together"
        ):
            runs[-1].append(operation)
        else:
            runs.append([operation])
    return runs


def _execute(connection: sa.Connection, run: list[_Operation]) -> list[Any]:
    if len(run) == 1:
        return [run[0].run(connection)]
    batchable: Any = run[0].run  # _runs_together checked that it has run_together
    together: Callable[[sa.Connection, list[Any]], list[Any]] = batchable.run_together
    return together(connection, [operation.run for operation in run])


def _settle(outcomes: list[_Outcome]) -> None:
    """Hand results and errors to the callers' loops: one wake-up per loop, not per write."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any, Any]]] = {}
    for operation, result, exc in outcomes:
        if operation.resolved:
            if exc is not None:
                # An early caller already has its ids; its next awaited write fails too.
                log.error("store write failed after its caller moved on", error=str(exc))
            continue
        operation.resolved = True
        error = None if exc is None else _store_error(exc)
        by_loop.setdefault(operation.loop, []).append((operation.future, result, error))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_in_loop, settled)
        except RuntimeError:
            log.warning("store caller's event loop is closed; results dropped",
                        count=len(settled))


def _store_error(exc: Exception) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    error = StoreError(f"store write failed: {exc}")
    error.__cause__ = exc
    return error


def _settle_in_loop(settled: list[tuple[asyncio.Future[Any], Any, StoreError | None]]) -> None:
    for future, result, error in settled:
        if future.done():  # the caller was cancelled
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)
