"""Every bad input, through every adapter, with its expected outcome."""

from __future__ import annotations

from typing import Any

import pytest

from mongo_session_backends import (
    KeyTypeError,
    MongoManager,
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
