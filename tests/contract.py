"""Storage contract tests, written once and run against every adapter.

A test class mixes in :class:`StoreContract` and provides a ``driver``
fixture: an object with ``put(key, value, timeout=None)``, ``fetch(key)``
(the value, or :data:`MISSING`), ``remove(key)`` and ``contains(key)``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import uuid
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import pytest
from markupsafe import Markup

from mongo_session_backends import MongoSessionError, SerializationError, ValueTooLarge

MISSING = object()
T = TypeVar("T")

VALUES: list[Any] = [
    "text",
    "ünïcødé ✓",
    "",
    0,
    -17,
    2**63 - 1,
    2**80,
    -(2**70),
    1.5,
    True,
    False,
    None,
    [],
    {},
    (),
    [1, "a", None],
    (1, (2, 3)),
    {"a": {"b": [1, 2]}},
    {"sauce": [], 256: "truffle"},
    {"$where": 1, "a.b": 2, "": 3, "~t": "x"},
    {(1, 2): "tuple key", None: 0, 1.5: "float key"},
    b"\x00\xffbytes",
    {1, 2, 3},
    frozenset({"a"}),
    dt.datetime(2024, 5, 1, 12, 30, 15, 123456),
    dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
    dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    dt.date(2024, 2, 29),
    dt.time(23, 59, 58, 999),
    dt.timedelta(days=-1, seconds=5, microseconds=7),
    decimal.Decimal("3.14159265358979323846264338327950288"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Markup("<b>safe</b>"),
]


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types, all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, dt.datetime):
        return a == b and a.tzinfo == b.tzinfo and a.utcoffset() == b.utcoffset()
    return bool(a == b)


class LoopDriver:
    """The base of a driver for an async store: each call runs on the driver's own loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)


class Driver(Protocol):
    def put(self, key: Any, value: Any, timeout: int | None = None) -> None: ...
    def fetch(self, key: Any) -> Any: ...
    def remove(self, key: Any) -> None: ...
    def contains(self, key: Any) -> bool: ...


class StoreContract:
    """What every adapter must do with values, keys, expiry and bad input."""

    #: Values an adapter's documented serializer cannot hold; subclasses trim.
    values = VALUES

    def test_missing_key(self, driver: Driver) -> None:
        assert driver.fetch("nope") is MISSING
        assert not driver.contains("nope")

    def test_round_trip(self, driver: Driver) -> None:
        for i, value in enumerate(self.values):
            driver.put(f"k{i}", value)
        for i, value in enumerate(self.values):
            got = driver.fetch(f"k{i}")
            assert same(got, value), (value, got)

    def test_overwrite_and_remove(self, driver: Driver) -> None:
        driver.put("k", 1)
        driver.put("k", "two")
        assert driver.fetch("k") == "two"
        assert driver.contains("k")
        driver.remove("k")
        assert driver.fetch("k") is MISSING
        assert not driver.contains("k")

    def test_none_is_a_value(self, driver: Driver) -> None:
        driver.put("k", None)
        assert driver.contains("k")

    @pytest.mark.parametrize("key", ["ключ", "a/b c:d", "$where", "a.b", ".*", "x" * 1000])
    def test_unusual_keys(self, driver: Driver, key: str) -> None:
        driver.put(key, "v")
        assert driver.fetch(key) == "v"
        driver.put(key.encode("utf-8"), "w")
        assert driver.fetch(key) == "w"

    def test_regex_key_matches_nothing_else(self, driver: Driver) -> None:
        driver.put("abc", 1)
        assert driver.fetch(".*") is MISSING
        assert driver.fetch("ab") is MISSING

    @pytest.mark.parametrize("key", [1, 1.5, None, ("a",), {"$gt": ""}])
    def test_bad_key_types(self, driver: Driver, key: Any) -> None:
        with pytest.raises(TypeError) as info:
            driver.put(key, "v")
        assert isinstance(info.value, MongoSessionError)

    def test_expiry(self, driver: Driver, clock: Any) -> None:
        driver.put("k", "v", timeout=10)
        clock.advance(9)
        assert driver.fetch("k") == "v"
        clock.advance(2)
        assert driver.fetch("k") is MISSING
        assert not driver.contains("k")

    def test_unserializable_value_writes_nothing(self, driver: Driver) -> None:
        driver.put("k", "old")
        with pytest.raises(SerializationError):
            driver.put("k", object())
        assert driver.fetch("k") == "old"

    def test_oversized_value_writes_nothing(self, driver: Driver) -> None:
        driver.put("k", "old")
        with pytest.raises(ValueTooLarge):
            driver.put("k", "x" * (17 * 1024 * 1024))
        assert driver.fetch("k") == "old"

    def test_corrupt_document_reads_as_miss(
        self, driver: Driver, collection: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        driver.put("k", {"secret": "marker-value"})
        collection.update_many({}, {"$set": {"value": {"~t": "nonsense", "v": 1}}})
        assert driver.fetch("k") in (MISSING, None)  # cachelib's miss is None
        assert "marker-value" not in caplog.text
