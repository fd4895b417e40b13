"""Every bad input, through every adapter, with its expected outcome."""

from __future__ import annotations

from typing import Any

import pytest

from mongo_session_backends import (
    AsyncMongoManager,
    ConfigurationError,
    KeyTypeError,
    MongoManager,
    MongoSessionError,
    SerializationError,
    ValueTooLarge,
)
from mongo_session_backends.beaker import MongoNamespaceManager
from mongo_session_backends.cachelib import MongoDBCache
from mongo_session_backends.pyramid import MongoSessionFactory

from .contract import MISSING
from .test_beaker import NamespaceDriver
from .test_cachelib import CacheDriver
from .test_manager import ManagerDriver
from .test_pyramid import SECRET, SessionDriver, make_app

ADAPTERS = ["manager", "cachelib", "beaker", "pyramid"]


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest, manager: MongoManager) -> tuple[str, Any]:
    name = request.param
    drivers = {
        "manager": lambda: ManagerDriver(manager),
        "cachelib": lambda: CacheDriver(MongoDBCache(manager=manager)),
        "beaker": lambda: NamespaceDriver(MongoNamespaceManager("ns", manager=manager)),
        "pyramid": lambda: SessionDriver(make_app(MongoSessionFactory(SECRET, manager=manager))),
    }
    return name, drivers[name]()


# (what, key, value, expected outcome for stores, for Pyramid's dict-keyed sessions)
BAD_INPUT: list[tuple[str, Any, Any, Any, Any]] = [
    ("int key", 7, "v", KeyTypeError, "stored"),
    ("None key", None, "v", KeyTypeError, "stored"),
    ("tuple key", ("a",), "v", KeyTypeError, "stored"),
    ("operator key", {"$gt": ""}, "v", KeyTypeError, TypeError),
    ("invalid UTF-8 key", b"\xff\xfe", "v", KeyTypeError, "stored"),
    ("object value", "k", object(), SerializationError, SerializationError),
    ("nested object value", "k", {"a": [object()]}, SerializationError, SerializationError),
    ("set of objects", "k", {object()}, SerializationError, SerializationError),
    ("17 MB string", "k", "x" * (17 << 20), ValueTooLarge, ValueTooLarge),
    ("17 MB bytes", "k", b"x" * (17 << 20), ValueTooLarge, ValueTooLarge),
    ("17 MB in many parts", "k", ["x" * (1 << 20)] * 17, ValueTooLarge, ValueTooLarge),
    ("operator value", "k", {"$set": {"a": 1}, "a.b": "$x"}, "stored", "stored"),
    ("NUL in key and value", "a\x00b", "c\x00d", "stored", "stored"),
]


@pytest.mark.parametrize(("what", "key", "value", "expected", "in_session"), BAD_INPUT,
                         ids=[row[0] for row in BAD_INPUT])  # fmt: skip
def test_bad_input(
    adapter: tuple[str, Any], what: str, key: Any, value: Any, expected: Any, in_session: Any
) -> None:
    name, driver = adapter
    outcome = in_session if name == "pyramid" else expected
    driver.put("k", "old")
    if outcome == "stored":
        driver.put(key, value)
        assert driver.fetch(key) == value
        return
    with pytest.raises(outcome):
        driver.put(key, value)
    assert driver.fetch("k") == "old"  # nothing was lost


def test_corrupt_value_is_a_miss_everywhere(adapter: tuple[str, Any], collection: Any) -> None:
    _, driver = adapter
    driver.put("k", "old")
    collection.update_many({}, {"$set": {"value": {"~t": "bogus"}}})
    assert driver.fetch("k") in (MISSING, None)
    collection.update_many({}, {"$unset": {"value": ""}})
    assert driver.fetch("k") in (MISSING, None)
    collection.update_many({}, {"$set": {"expires": "not a date"}})
    assert driver.fetch("k") in (MISSING, None)


# Every mistake a user can make at construction or in a call, each raising a
# MongoSessionError at the point of the mistake.
BAD_CALLS: list[tuple[str, Any]] = [
    ("URI without scheme", lambda m: MongoManager("not-a-uri")),
    ("URI typo", lambda m: MongoManager("mongdb://localhost")),
    ("http URI", lambda m: MongoManager("http://localhost")),
    ("empty host", lambda m: MongoManager("mongodb://")),
    ("unknown URI option", lambda m: MongoManager("mongodb://h/?serverSelectionTimeout=1")),
    ("unknown client option", lambda m: MongoManager(connection_options={"tz": True})),
    ("malformed client option", lambda m: MongoManager(connection_options={"tz_aware": "x"})),
    ("database with a space", lambda m: MongoManager(database_name="my app")),
    ("collection with $", lambda m: MongoManager(collection="a$b")),
    ("client not a client", lambda m: MongoManager(client=42)),
    ("expires NaN", lambda m: MongoManager(expires=float("nan"))),
    ("expires inf", lambda m: MongoManager(expires=float("inf"))),
    ("expires 1e12", lambda m: MongoManager(expires=1e12)),
    ("expires negative", lambda m: MongoManager(expires=-1)),
    ("expires_key value", lambda m: MongoManager(expires_key="value")),
    ("expires_key ns", lambda m: MongoManager(expires_key="ns")),
    ("id_field = expires_key", lambda m: MongoManager(id_field="e", expires_key="e")),
    ("unknown cleanup", lambda m: MongoManager(cleanup="sometimes")),  # type: ignore[arg-type]
    ("hash_ids without secret", lambda m: MongoManager(hash_ids=True)),
    ("pickle without secret", lambda m: MongoManager(serializer="pickle")),
    ("unknown serializer", lambda m: MongoManager(serializer="yaml")),
    ("bad encryption key", lambda m: MongoManager(encryption_keys=["short"])),
    ("timeout NaN", lambda m: m.set("k", 1, float("nan"))),
    ("timeout overflow", lambda m: m.set("k", 1, 10**13)),
    ("timeout string", lambda m: m.set("k", 1, "60")),
    ("lone surrogate key", lambda m: m.set("\udc80", 1)),
    ("lone surrogate value", lambda m: m.set("k", "\udc80")),
    ("float incr delta", lambda m: m.incr("k", 1.5)),
    ("incr on a float", lambda m: (m.set("f", 1.5), m.incr("f"))),
    ("closed manager", lambda m: (m.close(), m.get("k"))),
    ("cachelib: manager and options", lambda m: MongoDBCache(manager=m, collection="x")),
    ("cachelib: expires", lambda m: MongoDBCache(expires=60)),
    ("cachelib: misspelled option", lambda m: MongoDBCache(colection="x")),
    ("cachelib: default_timeout text", lambda m: MongoDBCache(default_timeout="soon")),
    ("beaker: manager and options", lambda m: MongoNamespaceManager("n", manager=m, url="x")),
    ("beaker: unknown setting", lambda m: MongoNamespaceManager("n", colection="x")),
    ("beaker: lock_timeout 0", lambda m: MongoNamespaceManager("n", lock_timeout="0")),
    ("beaker: lock_poll 0", lambda m: MongoNamespaceManager("n", lock_poll="0")),
    ("beaker: clock as text", lambda m: MongoNamespaceManager("n", clock="now")),
    ("pyramid: short secret", lambda m: MongoSessionFactory("short")),
    ("pyramid: secret not text", lambda m: MongoSessionFactory(12345678901234567890)),  # type: ignore[arg-type]
    ("pyramid: timeout text", lambda m: MongoSessionFactory(SECRET, timeout="Invalid value")),
    ("pyramid: timeout 0", lambda m: MongoSessionFactory(SECRET, timeout=0)),
    ("pyramid: max_age text", lambda m: MongoSessionFactory(SECRET, max_age="invalid value")),
    ("pyramid: samesite", lambda m: MongoSessionFactory(SECRET, samesite="sometimes")),
    ("pyramid: expires", lambda m: MongoSessionFactory(SECRET, expires=60)),
    ("pyramid: manager and options", lambda m: MongoSessionFactory(SECRET, manager=m, uri="x")),
]


@pytest.mark.parametrize(("what", "call"), BAD_CALLS, ids=[row[0] for row in BAD_CALLS])
def test_every_mistake_raises_a_mongo_session_error(
    manager: MongoManager, what: str, call: Any
) -> None:
    with pytest.raises(MongoSessionError) as info:
        call(manager)
    assert str(info.value), "the error explains itself"


@pytest.mark.parametrize("kind", [MongoManager, AsyncMongoManager])
def test_a_mistyped_manager_option_is_a_configuration_error(kind: type[Any]) -> None:
    with pytest.raises(ConfigurationError, match=r"databse_name for .*did you mean database_name"):
        kind("mongodb://127.0.0.1:1", databse_name="x")
