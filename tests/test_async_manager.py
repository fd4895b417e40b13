"""The async manager: the shared contract, the same documents, loops, cancellation, load."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest
from pymongo import AsyncMongoClient

from mongo_session_backends import (
    AsyncMongoManager,
    ConfigurationError,
    MongoManager,
    ServerUnavailable,
)
from mongo_session_backends.embedded import free_port

from .contract import MISSING, LoopDriver, StoreContract

T = TypeVar("T")


class AsyncDriver(LoopDriver):
    """The contract's driver on an async manager, on an event loop of its own."""

    def __init__(self, manager: AsyncMongoManager) -> None:
        super().__init__()
        self.manager = manager

    def put(self, key: Any, value: Any, timeout: int | None = None) -> None:
        self.wait(self.manager.set(key, value, timeout))

    def fetch(self, key: Any) -> Any:
        return self.wait(self.manager.get(key, MISSING))

    def remove(self, key: Any) -> None:
        self.wait(self.manager.delete(key))

    def contains(self, key: Any) -> bool:
        return self.wait(self.manager.has(key))

    def close(self) -> None:
        self.wait(self.manager.aclose())
        self.loop.close()


class TestAsyncManagerContract(StoreContract):
    @pytest.fixture
    def driver(self, manager_options: dict[str, Any]) -> Iterator[AsyncDriver]:
        d = AsyncDriver(AsyncMongoManager(**manager_options))
        yield d
        d.close()


async def test_sync_and_async_share_documents(
    manager: MongoManager, async_manager: AsyncMongoManager, collection: Any
) -> None:
    manager.set("from-sync", {"a": [1, 2]}, 60)
    assert await async_manager.get("from-sync") == {"a": [1, 2]}
    await async_manager.set("from-async", (1, "x"), 60)
    assert manager.get("from-async") == (1, "x")
    one = collection.find_one({"_id": "from-sync"})
    other = collection.find_one({"_id": "from-async"})
    assert set(one) == set(other) == {"_id", "value", "expires", "ns"}
    assert await async_manager.incr("n") == 1 and manager.incr("n") == 2
    assert await async_manager.add("n", 0) is False
    assert sorted(await async_manager.keys()) == sorted(manager.keys())


async def test_one_command_per_operation(async_manager: AsyncMongoManager, counter: Any) -> None:
    await async_manager.set("warm", 1)  # connects and prepares the collection
    operations = {
        "get": lambda: async_manager.get("warm"),
        "set": lambda: async_manager.set("k", 1),
        "has": lambda: async_manager.has("k"),
        "add": lambda: async_manager.add("new", 1),
        "delete": lambda: async_manager.delete("new"),
        "touch": lambda: async_manager.touch("k", 10),
        "incr": lambda: async_manager.incr("n"),
        "get_many": lambda: async_manager.get_many(["k", "warm"]),
        "set_many": lambda: async_manager.set_many({"a": 1, "b": 2}),
    }
    for name, operation in operations.items():
        counter.reset()
        await operation()
        assert len(counter.commands) == 1, (name, counter.commands)


async def test_constructed_before_any_loop(manager_options: dict[str, Any]) -> None:
    m = await asyncio.to_thread(AsyncMongoManager, **manager_options)  # no loop there
    assert await m.set("k", 1) and await m.get("k") == 1
    await m.aclose()


def test_works_from_one_loop_after_another(manager_options: dict[str, Any]) -> None:
    m = AsyncMongoManager(**manager_options)
    assert asyncio.run(m.set("k", 1))
    assert asyncio.run(m.get("k")) == 1  # a second loop gets its own client
    assert asyncio.run(m.incr("n")) == 1


def test_given_client_in_another_loop_fails_clearly(mongodb_uri: str, database_name: str) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_uri, tz_aware=True)
    m = AsyncMongoManager(client=client, database_name=database_name)
    assert asyncio.run(m.set("k", 1))
    with pytest.raises(ConfigurationError, match="event loop"):
        asyncio.run(m.get("k"))


async def test_aclose_ends_a_lifespan_and_the_next_one_reconnects(
    async_manager: AsyncMongoManager,
) -> None:
    async with async_manager as m:
        await m.set("k", 1)
    assert await async_manager.get("k") == 1  # a new lifespan of the same app


def test_every_lifespan_on_its_own_loop(manager_options: dict[str, Any]) -> None:
    m = AsyncMongoManager(**manager_options)

    async def lifespan() -> Any:
        async with m:
            return await m.incr("n")

    assert [asyncio.run(lifespan()) for _ in range(3)] == [1, 2, 3]


async def test_outage_is_bounded() -> None:
    m = AsyncMongoManager(
        f"mongodb://127.0.0.1:{free_port()}/x",
        connection_options={"serverSelectionTimeoutMS": 300},
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    results = await asyncio.gather(*(m.get("k") for _ in range(20)), return_exceptions=True)
    assert all(isinstance(r, ServerUnavailable) for r in results)
    assert loop.time() - started < 3


async def test_cancellation_leaves_nothing_half_done(
    async_manager: AsyncMongoManager, collection: Any
) -> None:
    await async_manager.set("warm", 1)
    for delay in (0, 0.0005, 0.001, 0.002, 0.005):
        tasks = [
            asyncio.create_task(async_manager.set("s", {"v": delay})),
            asyncio.create_task(async_manager.add("a", delay)),
            asyncio.create_task(async_manager.incr("n")),
            asyncio.create_task(async_manager.delete("d")),
            asyncio.create_task(async_manager.get("warm")),
        ]
        await asyncio.sleep(delay)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # The manager still works, and every stored entry is whole.
        assert await async_manager.get("warm") == 1
        for doc in collection.find():
            assert {"value", "expires", "ns"} <= set(doc)
    assert isinstance(await async_manager.incr("n"), int)


async def test_a_thousand_tasks(manager_options: dict[str, Any]) -> None:
    # Every operation is bounded by timeoutMS: one that waited longer would raise.
    options = {**manager_options["connection_options"], "timeoutMS": 20000}
    async_manager = AsyncMongoManager(**{**manager_options, "connection_options": options})
    async_manager.incr_mode = "update_and_read"  # the embedded server's findAndModify scans
    results = await asyncio.gather(*(async_manager.incr("n") for _ in range(1000)))
    assert await async_manager.get("n") == 1000
    assert max(results) == 1000
    wins = await asyncio.gather(*(async_manager.add(f"k{i % 10}", i) for i in range(1000)))
    assert sum(wins) == 10
    await async_manager.aclose()


async def test_maintenance(async_manager: AsyncMongoManager, clock: Any) -> None:
    await async_manager.set("live", "x" * 100)
    for i in range(5):
        await async_manager.set(f"old{i}", 1, 5)
    clock.advance(10)
    stats = await async_manager.stats()
    assert stats["live"] == 1 and stats["expired"] == 5 and stats["documents"] == 6
    assert stats["largest_size"] > 100 and stats["index_problems"] == []
    totals: list[int] = []
    assert await async_manager.purge_expired(batch_size=2, progress=totals.append) == 5
    assert totals[-1] == 5 and await async_manager.count() == 1
    assert await async_manager.ensure_indexes() == []
    assert await async_manager.ping()
