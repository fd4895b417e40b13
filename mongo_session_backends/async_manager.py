"""The async collection manager, on PyMongo's own ``AsyncMongoClient``.

It takes the options of :class:`~mongo_session_backends.MongoManager`,
checks them the same way and runs the same plans
(:mod:`~mongo_session_backends.core`), so both managers send the same
commands and write the same documents: an entry written by one is read by
the other.

Loops and threads: an ``AsyncMongoClient`` belongs to the event loop that
first used it. The manager can be made at import time, before any loop
runs; it connects inside the first loop that uses it. A manager whose
client it made itself gives every other event loop (a test client's own
loop, a reloader, one loop per test) a client of its own, so it works from
any loop. A client given by the application belongs to one loop: using the
manager from another raises :class:`~mongo_session_backends.ConfigurationError`
at once, rather than hanging.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, TypeVar

import pymongo
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from .connection import new_client
from .core import DRIVER_ERRORS, Call, Plan, Steps
from .exceptions import ConfigurationError, ManagerClosed
from .manager import BaseManager

__all__ = ["AsyncMongoManager"]

R = TypeVar("R")


async def send(call: Call, collection: AsyncCollection[Any]) -> tuple[Any, BaseException | None]:
    """Perform ``call`` on an async collection: ``(reply, None)`` or ``(None, error)``."""
    try:
        result = call.bound(collection)(*call.args, **call.kwargs)
        if asyncio.iscoroutine(result):
            result = await result
        return (await result.to_list(None) if call.many else result), None
    except DRIVER_ERRORS as exc:
        return None, exc


async def run(plan: Plan[R], collection: AsyncCollection[Any]) -> R:
    """Run ``plan`` to its end on an async collection; return its result."""
    steps = Steps(plan)
    for call in steps:
        steps.reply, steps.error = await send(call, collection)
    return steps.result


class AsyncMongoManager(BaseManager):
    """Stores expiring entries in one MongoDB collection, for asyncio apps.

    Every operation of :class:`~mongo_session_backends.MongoManager` is a
    coroutine here, with the same arguments, results and one-command
    guarantee: ``await manager.get(key)``, ``await manager.set(key, value,
    60)`` ... The options are those of ``MongoManager``; ``client`` is an
    ``AsyncMongoClient``. Use ``async with manager:`` or ``await
    manager.aclose()`` to close the client the manager made for the running
    loop (at the end of an app's lifespan); it connects again if used later.

    A cancelled operation leaves nothing half-written: every operation is
    one atomic command, or a sequence of atomic, conditional ones (``add``
    over an unreadable entry, the compare-and-swap ``incr``), so a
    cancellation between two leaves the entry as one of them left it.
    """

    client_class = AsyncMongoClient

    @property
    def client(self) -> AsyncMongoClient[dict[str, Any]]:
        """The ``AsyncMongoClient`` of the running event loop."""
        return self._open().database.client

    def _open(self) -> AsyncCollection[dict[str, Any]]:
        """The collection, with the client of the running loop. Call inside a loop."""
        loop = asyncio.get_running_loop()
        conn = self._conn
        made = conn.loops.get(loop)
        if made is not None and not conn.closed and conn.pid == os.getpid():
            return made[1]  # type: ignore[no-any-return]
        with conn.lock:  # held for no I/O: a client connects on its first command
            if conn.closed:
                raise ManagerClosed("this manager is closed; create a new one")
            if conn.pid != os.getpid():
                conn.loops.clear()  # the parent's clients must not be used after fork
                conn.pid = os.getpid()
                conn.prepared.reset()
                if self._own_client:
                    conn.client = None
            made = conn.loops.get(loop)
            if made is None:
                client = self._client_for(loop)
                made = conn.loops[loop] = (client, self._collection_of(client))
            collection: AsyncCollection[dict[str, Any]] = made[1]
            return collection

    def _client_for(self, loop: asyncio.AbstractEventLoop) -> Any:
        """The client for a loop that has none yet. Call under the lock."""
        conn = self._conn
        if conn.client is not None and not conn.loops:
            client = conn.client  # made (or given) before any loop ran
        elif self._own_client:
            client = new_client(self.uri, self._options, self.client_class)
        else:
            raise ConfigurationError(
                "the AsyncMongoClient given to this manager belongs to another event loop; "
                "give the manager a URI so it can make a client for each loop"
            )
        conn.client = client
        return client

    async def _run(self, plan: Plan[R]) -> R:
        """Run ``plan`` on the collection, preparing it first if needed."""
        collection = self._open()
        if self._prepared.due():
            await run(self._preparation(), collection)
        return await run(plan, collection)

    async def ping(self, timeout: float = 5.0) -> bool:
        """Return ``True`` if MongoDB answers within ``timeout`` seconds.

        Raises :class:`~mongo_session_backends.ServerUnavailable` otherwise.
        """
        with pymongo.timeout(timeout):
            return await run(self._core.ping(), self._open())

    async def ensure_indexes(self) -> list[str]:
        """Create or fix the indexes this manager needs; return what was done."""
        done = await run(self._core.ensure_indexes(self.collection_name), self._open())
        self._prepared.succeeded()
        return done

    async def purge_expired(
        self, *, batch_size: int = 1000, progress: Callable[[int], Any] | None = None
    ) -> int:
        """See :meth:`MongoManager.purge_expired`."""
        plan = self._core.purge_expired(batch_size=batch_size, progress=progress)
        return await run(plan, self._open())

    async def stats(self, *, progress: Callable[[str], Any] | None = None) -> dict[str, Any]:
        """See :meth:`MongoManager.stats`."""
        plan = self._core.stats(self.database_name, self.collection_name, progress)
        return await run(plan, self._open())

    async def aclose(self) -> None:
        """Close the client of the running loop, if the manager made it; forget the others.

        The manager stays usable: a later operation connects again, so one
        app object can run several lifespans, as test clients do. Clients
        the manager made for loops that have ended are dropped.
        """
        loop = asyncio.get_running_loop()
        conn = self._conn
        with conn.lock:
            made = conn.loops.get(loop)
            conn.loops.clear()
            conn.prepared.reset()
            if self._own_client:
                conn.client = None
        if made is not None and self._own_client:
            await made[0].close()

    async def __aenter__(self) -> AsyncMongoManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __aiter__(self) -> AsyncIterator[str]:
        for key in await self.keys():
            yield key
