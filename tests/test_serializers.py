"""Serializers: native BSON where exact, tagged elsewhere, signed pickle."""

from __future__ import annotations

import pickle
from typing import Any

import bson
import pytest

from mongo_session_backends import (
    ConfigurationError,
    JSONSerializer,
    NativeSerializer,
    PickleSerializer,
    SerializationError,
)
from mongo_session_backends.serializers import get_serializer

from .contract import VALUES, same


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_native_round_trip_through_bson(value: Any) -> None:
    s = NativeSerializer()
    stored = bson.decode(bson.encode({"v": s.dumps(value)}))["v"]
    assert same(s.loads(stored), value)


def test_native_is_readable() -> None:
    s = NativeSerializer()
    assert s.dumps({"user": "alice", "n": 3, "tags": ["a"]}) == {
        "user": "alice",
        "n": 3,
        "tags": ["a"],
    }
    assert s.dumps(2**70) == {"~t": "int", "v": str(2**70)}


@pytest.mark.parametrize(
    "value", [object(), {1: object()}, [lambda: 1], type("Str", (str,), {})("x")]
)
def test_native_refuses_unknown_types(value: Any) -> None:
    with pytest.raises(SerializationError, match="cannot store"):
        NativeSerializer().dumps(value)


def test_json() -> None:
    s = JSONSerializer()
    assert s.loads(s.dumps({"a": [1, None]})) == {"a": [1, None]}
    with pytest.raises(SerializationError):
        s.dumps({1, 2})


def test_pickle_needs_a_secret() -> None:
    with pytest.raises(ConfigurationError):
        PickleSerializer(None)
    with pytest.raises(ConfigurationError):
        PickleSerializer("short")
    with pytest.raises(ConfigurationError):
        get_serializer("pickle")


def test_pickle_signed(tmp_path: Any) -> None:
    s = PickleSerializer("a-long-enough-secret")
    assert s.loads(s.dumps({"a": (1, 2)})) == {"a": (1, 2)}
    assert "a-long-enough-secret" not in repr(s)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> Any:
            return (open, (str(marker), "w"))

    forged = b"\x00" * 32 + pickle.dumps(Evil())
    with pytest.raises(ValueError):
        s.loads(forged)
    other = PickleSerializer("another-long-secret!")
    with pytest.raises(ValueError):
        s.loads(other.dumps(1))
    assert not marker.exists()


def test_get_serializer() -> None:
    assert isinstance(get_serializer(None), NativeSerializer)
    assert isinstance(get_serializer("json"), JSONSerializer)
    custom = JSONSerializer()
    assert get_serializer(custom) is custom
    with pytest.raises(ConfigurationError):
        get_serializer(object())  # type: ignore[arg-type]
