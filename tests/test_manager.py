"""The shared manager: contract, expiry, atomicity, round trips, indexes."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from pymongo import MongoClient

from mongo_session_backends import (
    ConfigurationError,
    IndexConflict,
    KeyTypeError,
    ManagerClosed,
    MongoManager,
    ServerUnavailable,
    ValueTooLarge,
)
from mongo_session_backends.embedded import free_port
from mongo_session_backends.manager import FAR_FUTURE, mask_uri

from .contract import MISSING, StoreContract


class ManagerDriver:
    def __init__(self, manager: MongoManager) -> None:
        self.manager = manager

    def put(self, key: Any, value: Any, timeout: int | None = None) -> None:
        self.manager.set(key, value, timeout)

    def fetch(self, key: Any) -> Any:
        return self.manager.get(key, MISSING)

    def remove(self, key: Any) -> None:
        self.manager.delete(key)

    def contains(self, key: Any) -> bool:
        return self.manager.has(key)


class TestManagerContract(StoreContract):
    @pytest.fixture
    def driver(self, manager: MongoManager) -> ManagerDriver:
        return ManagerDriver(manager)


def test_constructor_does_not_touch_the_network() -> None:
    port = free_port()
    m = MongoManager(
        f"mongodb://127.0.0.1:{port}", connection_options={"serverSelectionTimeoutMS": 300}
    )
    started = time.monotonic()
    with pytest.raises(ServerUnavailable):
        m.get("k")
    assert time.monotonic() - started < 5
    with pytest.raises(ServerUnavailable):
        m.ping(timeout=0.3)
    m.close()


@pytest.mark.parametrize(
    "options",
    [
        {"cleanup": "sometimes"},
        {"expires": -1},
        {"expires": "soon"},
        {"expire_after_seconds": -5},
        {"expire_after_seconds": 1.5},
        {"collection": ""},
        {"collection": "$bad"},
        {"id_field": "value"},
        {"hash_ids": True},
        {"serializer": "yaml"},
        {"serializer": "pickle"},
        {"cleanup": "cosmos", "expires": 0},
        {"incr_mode": "sometimes"},
    ],
)
def test_bad_options(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        MongoManager(**options)


def test_database_from_uri() -> None:
    assert MongoManager("mongodb://h:1/app?w=1").database_name == "app"
    assert MongoManager("mongodb://h:1/").database_name == "sessions"
    assert MongoManager("mongodb://h:1/app", database_name="x").database_name == "x"


def test_repr_masks_password() -> None:
    m = MongoManager("mongodb://user:hunter2@db.example:27017/app")
    assert "hunter2" not in repr(m)
    assert mask_uri("mongodb://u:p@h/") == "mongodb://u:***@h/"


def test_ping(manager: MongoManager) -> None:
    assert manager.ping()


def test_one_round_trip_per_operation(manager: MongoManager, counter: Any) -> None:
    manager.set("warm", 1)  # connects and creates indexes once
    operations = {
        "get": lambda: manager.get("k"),
        "set": lambda: manager.set("k", {"a": 1}),
        "has": lambda: manager.has("k"),
        "add": lambda: manager.add("new", 1),
        "touch": lambda: manager.touch("k", 60),
        "incr": lambda: manager.incr("n"),
        "get_many": lambda: manager.get_many(["k", "new"]),
        "set_many": lambda: manager.set_many({"a": 1, "b": 2}),
        "delete_many": lambda: manager.delete_many(["a", "b"]),
        "delete": lambda: manager.delete("k"),
    }
    for name, operation in operations.items():
        counter.reset()
        operation()
        assert len(counter.commands) == 1, (name, counter.commands)


def test_indexes_created_once(
    manager_options: dict[str, Any], counter: Any, collection: Any
) -> None:
    m = MongoManager(**manager_options)
    m.get("a")
    first = list(counter.commands)
    assert "createIndexes" in first
    counter.reset()
    m.get("b")
    assert counter.commands == ["find"]
    m2 = MongoManager(**manager_options)
    m2.get("a")  # a second manager finds the indexes in place
    info = collection.index_information()
    assert info["expires_1"]["expireAfterSeconds"] == 0
    assert "ns_1" in info
    assert m2.ensure_indexes() == []


def test_expiry_everywhere(manager: MongoManager, clock: Any) -> None:
    manager.set("k", "v", 10)
    manager.set("n", 5, 10)
    clock.advance(11)
    assert manager.get("k") is None
    assert not manager.has("k")
    assert manager.get_many(["k", "n"]) == [None, None]
    assert manager.count() == 0
    assert list(manager.keys()) == []
    assert not manager.touch("k")
    assert manager.delete("k")  # still stored: removed now, not at the next TTL pass
    assert not manager.delete("k")
    assert manager.add("n", "fresh")
    assert manager.get("n") == "fresh"
    assert manager.incr("m") == 1


def test_timeout_zero_means_never(manager: MongoManager, clock: Any, collection: Any) -> None:
    manager.set("k", "v", 5)
    manager.set("k", "v", 0)
    clock.advance(10**9)
    assert manager.get("k") == "v"
    assert collection.find_one()["expires"] == FAR_FUTURE


def test_timedelta_and_default_expiry(manager_options: dict[str, Any], clock: Any) -> None:
    m = MongoManager(expires=dt.timedelta(seconds=30), **manager_options)
    m.set("a", 1)
    m.set("b", 1, dt.timedelta(minutes=5))
    clock.advance(31)
    assert m.get("a") is None and m.get("b") == 1


def test_negative_timeout_is_expired(manager: MongoManager) -> None:
    manager.set("k", "v", -1)
    assert manager.get("k") is None


def test_expires_is_aware_utc(manager: MongoManager, collection: Any, clock: Any) -> None:
    manager.set("k", "v", 60)
    stored = collection.find_one()["expires"]
    assert stored.tzinfo is not None and stored.utcoffset() == dt.timedelta(0)
    assert abs(stored - (clock.now + dt.timedelta(seconds=60))) < dt.timedelta(milliseconds=2)


def test_touch_extends_without_rewriting(manager: MongoManager, clock: Any, counter: Any) -> None:
    manager.set("k", {"big": "value"}, 10)
    counter.reset()
    assert manager.touch("k", 100)
    assert counter.commands == ["update"]
    clock.advance(50)
    assert manager.get("k") == {"big": "value"}
    assert not manager.touch("missing")
    assert not manager.has("missing")  # touch never creates


def test_add_is_atomic(manager: MongoManager) -> None:
    barrier = threading.Barrier(8)
    wins: list[int] = []

    def worker(i: int) -> None:
        barrier.wait()
        if manager.add("k", i):
            wins.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert manager.get("k") == wins[0]


INCR_PATHS = pytest.mark.parametrize(
    ("serializer", "mode"),
    [("native", "find_and_modify"), ("native", "update_and_read"), ("json", "find_and_modify")],
)


@INCR_PATHS
def test_incr_is_atomic(manager_options: dict[str, Any], serializer: str, mode: Any) -> None:
    m = MongoManager(serializer=serializer, incr_mode=mode, **manager_options)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            m.incr("n", 2)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.get("n") == 400


@INCR_PATHS
def test_incr_semantics(
    manager_options: dict[str, Any], clock: Any, serializer: str, mode: Any
) -> None:
    manager = MongoManager(serializer=serializer, incr_mode=mode, **manager_options)
    assert manager.incr("n", 5, 10) == 5
    assert manager.incr("n", -7) == -2
    clock.advance(9)
    assert manager.incr("n") == -1  # keeps its expiry
    clock.advance(2)
    assert manager.get("n") is None
    assert manager.incr("n", 3) == 3  # expired but still stored: starts again
    manager.set("s", "text")
    with pytest.raises(TypeError):
        manager.incr("s")
    assert manager.get("s") == "text"
    with pytest.raises(TypeError):
        manager.incr("n", 1.5)  # type: ignore[arg-type]


def test_prefixes_share_a_collection(manager: MongoManager) -> None:
    a, b = manager.with_prefix("a:"), manager.with_prefix("a:b:")
    a.set("k", 1)
    a.set("bk", "not b's")
    b.set("k", 2)
    manager.set("plain", 3)
    assert a.get("k") == 1 and b.get("k") == 2
    assert sorted(a.keys()) == ["bk", "k"]
    assert list(b.keys()) == ["k"]
    assert b.clear() == 1
    assert a.get("k") == 1 and a.get("bk") == "not b's" and manager.get("plain") == 3
    assert a.count() == 2
    assert a.clear() == 2
    assert manager.count() == 1


def test_clear_keeps_indexes(manager: MongoManager, collection: Any) -> None:
    manager.set("k", 1)
    before = collection.index_information()
    manager.clear()
    assert collection.index_information() == before
    assert collection.count_documents({}) == 0


def test_regex_prefix_is_harmless(manager: MongoManager) -> None:
    manager.with_prefix("ab").set("k", 1)
    dot = manager.with_prefix(".*")
    dot.set("k", 2)
    assert dot.clear() == 1
    assert manager.with_prefix("ab").get("k") == 1


def test_long_keys_are_hashed(manager: MongoManager, collection: Any) -> None:
    key = "é" * 2000
    manager.set(key, "v")
    assert manager.get(key) == "v"
    stored = collection.find_one()["_id"]
    assert len(stored.encode()) < 100


def test_bytes_keys(manager: MongoManager) -> None:
    manager.set(b"k", 1)
    assert manager.get("k") == 1
    with pytest.raises(KeyTypeError):
        manager.get(b"\xff\xfe")


def test_set_many_and_get_many(manager: MongoManager) -> None:
    assert manager.set_many({"a": 1, "b": None, "c": (1,)}) == ["a", "b", "c"]
    assert manager.get_many(["c", "x", "a", "b", "a"], "?") == [(1,), "?", 1, None, 1]
    assert manager.delete_many(["a", "b", "x"]) == 2


def test_set_many_checks_every_value_first(manager: MongoManager) -> None:
    with pytest.raises(ValueTooLarge):
        manager.set_many({"a": 1, "b": ["x" * (9 * 1024 * 1024)] * 2})
    assert manager.get("a") is None


def test_long_delete_many_is_batched(manager: MongoManager, counter: Any) -> None:
    keys = [f"k{i}" for i in range(1200)]
    manager.set_many(dict.fromkeys(keys, 1))
    counter.reset()
    assert manager.delete_many(keys) == 1200
    assert counter.commands == ["delete"] * 3


def test_only_if_live(manager: MongoManager) -> None:
    assert not manager.set("k", 1, only_if_live=True)
    assert manager.get("k") is None
    manager.set("k", 1)
    assert manager.set("k", 2, only_if_live=True)
    assert manager.get("k") == 2


def test_purge_expired(manager: MongoManager, clock: Any, collection: Any) -> None:
    manager.set("old", 1, 5)
    manager.set("new", 1, 50)
    clock.advance(10)
    assert manager.purge_expired() == 1
    assert [d["_id"] for d in collection.find()] == ["new"]


def test_ttl_monitor_removes_expired(
    manager: MongoManager, admin_client: MongoClient[Any], collection: Any
) -> None:
    manager.set("k", "v", -10)
    try:
        admin_client.admin.command("secantusAdmin.pruneTtl")
    except Exception:
        pytest.skip("this server has no way to run the TTL monitor now")
    assert collection.count_documents({}) == 0


def test_cleanup_modes(manager_options: dict[str, Any], collection: Any) -> None:
    MongoManager(cleanup="cosmos", expires=600, **manager_options).ensure_indexes()
    info = collection.index_information()
    assert info["_ts_1"]["expireAfterSeconds"] == 600
    assert "expires_1" not in info


def test_cleanup_none_has_no_ttl_index(manager_options: dict[str, Any], collection: Any) -> None:
    m = MongoManager(cleanup="none", **manager_options)
    m.set("k", 1)
    assert all("expireAfterSeconds" not in i for i in collection.index_information().values())


def test_conflicting_ttl_index_is_fixed(manager_options: dict[str, Any], collection: Any) -> None:
    collection.create_index("expires", expireAfterSeconds=3600)
    m = MongoManager(**manager_options)
    m.set("k", 1)
    assert collection.index_information()["expires_1"]["expireAfterSeconds"] == 0
    assert m.get("k") == 1


def test_plain_index_conflict_is_reported(manager_options: dict[str, Any], collection: Any) -> None:
    collection.create_index("expires", name="my_expiry_index")
    m = MongoManager(**manager_options)
    with pytest.raises(IndexConflict, match="my_expiry_index"):
        m.set("k", 1)
    with pytest.raises(IndexConflict):  # raised again, not swallowed
        m.get("k")


def test_on_error_receives_index_errors(manager_options: dict[str, Any], collection: Any) -> None:
    collection.create_index("expires", name="my_expiry_index")
    errors: list[BaseException] = []
    m = MongoManager(on_error=errors.append, **manager_options)
    m.set("k", 1)
    assert m.get("k") == 1
    assert len(errors) == 1 and isinstance(errors[0], IndexConflict)


def test_custom_fields(manager_options: dict[str, Any], collection: Any, clock: Any) -> None:
    m = MongoManager(id_field="sid", expires_key="expiresAt", **manager_options)
    m.set("k", 1, 10)
    assert m.add("k", 2) is False
    doc = collection.find_one()
    assert doc["sid"] == "k" and "expiresAt" in doc
    assert collection.index_information()["sid_1"]["unique"]
    assert m.incr("n") == 1 and m.delete("k")
    m.set("e", 1, 5)
    clock.advance(6)
    assert m.get("e") is None and m.add("e", 2)


def test_shared_client_is_not_closed(mongodb_uri: str, database_name: str) -> None:
    client: MongoClient[Any] = MongoClient(mongodb_uri)
    m = MongoManager(client=client, database_name=database_name)
    m.set("k", 1)
    m.close()
    assert client[database_name]["sessions"].count_documents({}) == 1
    client.close()


def test_closed_manager_refuses(manager: MongoManager) -> None:
    manager.close()
    with pytest.raises(ManagerClosed):
        manager.get("k")


def _filters(command: Any) -> list[Any]:
    """The query filters of a find, update, delete or findAndModify command."""
    name = next(iter(command))
    if name == "find":
        return [command["filter"]]
    if name == "findAndModify":
        return [command["query"]]
    if name == "update":
        return [u["q"] for u in command["updates"]]
    if name == "delete":
        return [d["q"] for d in command["deletes"]]
    return []


def test_hot_paths_pin_one_id(manager: MongoManager, counter: Any) -> None:
    """Every hot-path filter is an equality on ``_id``: one index lookup on any server.

    Reads and ``delete`` send the id alone; writes that must find a live or
    an expired entry add only an ``expires`` predicate. How the cost holds as
    the collection grows is measured by the benchmark, not timed here.
    """
    manager.set("k", 1)
    by_id_alone = {
        "get": lambda: manager.get("k"),
        "has": lambda: manager.has("k"),
        "delete": lambda: manager.delete("k"),
    }
    with_expiry = {
        "set": lambda: manager.set("k", {"a": 1}),
        "set only if live": lambda: manager.set("k", 2, only_if_live=True),
        "add": lambda: manager.add("new", 1),
        "touch": lambda: manager.touch("k", 60),
        "incr": lambda: manager.incr("n"),
        "set_many": lambda: manager.set_many({"a": 1, "b": 2}),
    }
    for name, operation in {**by_id_alone, **with_expiry}.items():
        counter.reset()
        operation()
        filters = [f for doc in counter.documents for f in _filters(doc)]
        assert filters, name
        for query in filters:
            assert isinstance(query["_id"], str), (name, query)
            allowed = {"_id"} if name in by_id_alone else {"_id", "expires"}
            assert set(query) <= allowed, (name, query)
