"""MongoDBCache: the complete cachelib BaseCache contract."""

from __future__ import annotations

import datetime as dt
import inspect
import threading
import warnings
from typing import Any

import pytest
from cachelib.base import BaseCache
from cachelib.serializers import JSONSerializer

from mongo_session_backends import ConfigurationError, MongoManager
from mongo_session_backends.cachelib import MongoDBCache

from .contract import MISSING, StoreContract


@pytest.fixture
def cache(manager_options: dict[str, Any]) -> Any:
    c = MongoDBCache(key_prefix="prefix:", **manager_options)
    yield c
    c.close()


class CacheDriver:
    def __init__(self, cache: MongoDBCache) -> None:
        self.cache = cache

    def put(self, key: Any, value: Any, timeout: int | None = None) -> None:
        assert self.cache.set(key, value, timeout) is True

    def fetch(self, key: Any) -> Any:
        return self.cache.get(key) if self.cache.has(key) else MISSING

    def remove(self, key: Any) -> None:
        self.cache.delete(key)

    def contains(self, key: Any) -> bool:
        return self.cache.has(key)


class TestCacheContract(StoreContract):
    @pytest.fixture
    def driver(self, cache: MongoDBCache) -> CacheDriver:
        return CacheDriver(cache)


def test_implements_every_base_cache_method() -> None:
    public = [n for n, f in vars(BaseCache).items() if callable(f) and not n.startswith("_")]
    assert public
    for name in public:
        ours = getattr(MongoDBCache, name)
        assert ours is not getattr(BaseCache, name), name
        base_params = inspect.signature(getattr(BaseCache, name)).parameters
        our_params = inspect.signature(ours).parameters
        for pname, param in base_params.items():
            assert pname in our_params, (name, pname)
            assert our_params[pname].default == param.default, (name, pname)


def test_constructor_signature(mongodb_uri: str, database_name: str) -> None:
    c = MongoDBCache(uri=mongodb_uri, database_name=database_name, collection="cache")
    assert c.default_timeout == 300 and c.key_prefix == "" and c.ignore_delete_many_errors
    assert c.set("k", 1) and c.get("k") == 1
    m = MongoManager(uri=mongodb_uri, database_name=database_name)
    a, b = MongoDBCache(manager=m, key_prefix="a"), MongoDBCache(manager=m, key_prefix="b")
    a.set("k", 1)
    assert b.get("k") is None
    with pytest.raises(ConfigurationError):
        MongoDBCache(manager=m, uri=mongodb_uri)


def test_return_values(cache: MongoDBCache) -> None:
    assert cache.get("missing") is None
    assert cache.set("a", "x") is True
    assert cache.add("a", "y") is False
    assert cache.add("b", "y") is True
    assert cache.get_many("a", "missing", "b") == ["x", None, "y"]
    assert cache.get_dict("a", "b", "c") == {"a": "x", "b": "y", "c": None}
    assert cache.set_many({"c": 1, "d": 2}) == ["c", "d"]
    assert cache.delete("c") is True
    assert cache.delete("c") is False
    assert cache.delete_many("d", "missing") == ["d", "missing"]
    assert cache.has("a") and not cache.has("d")
    assert cache.clear() is True
    assert not cache.has("a")


def test_inc_dec(cache: MongoDBCache) -> None:
    assert cache.inc("n") == 1
    assert cache.inc("n", 10) == 11
    assert cache.dec("n", 3) == 8
    assert cache.dec("m") == -1
    assert cache.get("n") == 8


def test_timeouts(cache: MongoDBCache, clock: Any) -> None:
    cache.set("default", 1)
    cache.set("forever", 1, timeout=0)
    cache.set("delta", 1, timeout=dt.timedelta(seconds=10, microseconds=1))
    cache.set("short", 1, timeout=10)
    clock.advance(10.5)
    assert cache.get("short") is None
    assert cache.get("delta") == 1  # rounded up to 11 s
    clock.advance(1)
    assert cache.get("delta") is None
    clock.advance(300)
    assert cache.get("default") is None
    assert cache.get("forever") == 1


def test_timeout_zero_after_finite(cache: MongoDBCache, clock: Any) -> None:
    cache.set("k", 1, timeout=5)
    cache.set("k", 1, timeout=0)
    clock.advance(10**8)
    assert cache.get("k") == 1


def test_float_timeout_warns(cache: MongoDBCache) -> None:
    with pytest.warns(DeprecationWarning):
        cache.set("k", 1, timeout=1.5)  # type: ignore[arg-type]


def test_touch(cache: MongoDBCache, clock: Any) -> None:
    cache.set("k", 1, timeout=10)
    assert cache.touch("k", 100)
    clock.advance(50)
    assert cache.get("k") == 1
    assert not cache.touch("missing")


def test_key_prefix_is_invisible(cache: MongoDBCache, collection: Any) -> None:
    cache.set("k", 1)
    assert collection.find_one()["_id"] == "prefix:k"
    assert list(cache.manager.keys()) == ["k"]


def test_clear_only_touches_own_prefix(manager_options: dict[str, Any]) -> None:
    m = MongoManager(**manager_options)
    a, b = MongoDBCache(manager=m, key_prefix="a:"), MongoDBCache(manager=m, key_prefix="b:")
    a.set("k", 1)
    b.set("k", 2)
    assert a.clear()
    assert a.get("k") is None and b.get("k") == 2


def test_serializer_is_read_at_call_time(cache: MongoDBCache, collection: Any) -> None:
    cache.serializer = JSONSerializer()  # type: ignore[assignment]
    value = {"a": [1, 2], "b": None}
    cache.set("k", value)
    assert isinstance(collection.find_one()["value"], bytes)
    assert cache.get("k") == value
    assert cache.inc("n", 2) == 2 and cache.inc("n") == 3


def test_json_serializer_under_warnings_as_errors(cache: MongoDBCache) -> None:
    cache.serializer = JSONSerializer()  # type: ignore[assignment]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.set("k", [1])
        assert cache.get("k") == [1]


def test_concurrent_add_and_inc(cache: MongoDBCache) -> None:
    barrier = threading.Barrier(8)
    wins: list[bool] = []

    def worker() -> None:
        barrier.wait()
        wins.append(cache.add("k", 1))
        for _ in range(10):
            cache.inc("n")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    assert cache.get("n") == 80


def test_backend_down_follows_cachelib_contract(caplog: pytest.LogCaptureFixture) -> None:
    from mongo_session_backends.embedded import free_port

    c = MongoDBCache(
        uri=f"mongodb://127.0.0.1:{free_port()}",
        connection_options={"serverSelectionTimeoutMS": 200},
    )
    assert c.get("k") is None
    assert c.set("k", {"secret": "marker"}) is False
    assert c.add("k", 1) is False
    assert c.delete("k") is False
    assert c.has("k") is False
    assert c.inc("n") is None
    assert c.clear() is False
    assert c.get_many("a", "b") == [None, None]
    assert c.set_many({"a": 1}) == []
    assert c.delete_many("a") == []
    assert "marker" not in caplog.text
    assert "cache set skipped" in caplog.text
    strict = MongoDBCache(
        ignore_delete_many_errors=False,
        uri=f"mongodb://127.0.0.1:{free_port()}",
        connection_options={"serverSelectionTimeoutMS": 200},
    )
    with pytest.raises(RuntimeError):
        strict.delete_many("a")
