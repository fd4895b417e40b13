"""The async half of one benchmark run: its cases, collections and event loop."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient, MongoClient

from .async_cases import (
    ASYNC_PEERS,
    COLLECTION,
    LARGE,
    Loop,
    empty_peers,
    fill_peers,
    growing,
    manager_cases,
    peer_cases,
    request_cases,
)
from .cases import Case, populate


class AsyncHalf:
    """Every async case of a run, on one event loop and one ``AsyncMongoClient``.

    :param uri: the server, as for the sync clients.
    :param base: the server's URI without a database, for the peers.
    :param database: the benchmark's database.
    :param options: the client options every client gets.
    :param listeners: command listeners for every async client (ours and the peers').
    :param sync: a sync client, for filling and resetting collections untimed.
    """

    def __init__(
        self,
        uri: str,
        base: str,
        database: str,
        options: dict[str, Any],
        listeners: list[Any],
        sync: MongoClient[Any],
    ) -> None:
        self.loop = Loop()
        self.database = database
        self.sync = sync
        self.client: AsyncMongoClient[Any] = AsyncMongoClient(
            uri, event_listeners=listeners, **options
        )
        self.manager, manager = manager_cases(self.loop, self.client, sync, database)
        requests = request_cases(self.loop, self.manager, self.client)
        self.peers = peer_cases(
            self.loop, base, database, options, listeners, self.manager, self.client
        )
        self.cases: list[Case] = [*manager, *requests, *self.peers.cases]
        self.peer_cases = [c for c in self.cases if c.system in ASYNC_PEERS]

    def fill(self, size: int) -> None:
        """Grow our async collection and the peers' to ``size`` documents."""
        populate(self.sync, self.database, size, COLLECTION)
        fill_peers(self.sync, self.database, size)

    def refill_peers(self, size: int) -> None:
        """The peers' collections at exactly ``size`` fill documents."""
        empty_peers(self.sync, self.database)
        fill_peers(self.sync, self.database, size)

    def growth(self, size: int) -> tuple[list[Case], list[Case]]:
        """The growth test's cases: ours and raw on our collection and on one of ``size``."""
        populate(self.sync, self.database, size, LARGE)
        _, large = manager_cases(self.loop, self.client, self.sync, self.database, LARGE, (1,))
        return growing(self.cases), growing(large)

    def close(self) -> None:
        self.peers.close()
        self.loop.run(self.client.close())
        self.loop.close()
