"""Serializers: objects with ``dumps(value)`` and ``loads(data)``.

``dumps`` returns something BSON can store (a document, a list, ``bytes``,
``str``, a number ...) and ``loads`` turns it back into the value.

* :class:`NativeSerializer` (the default) stores values as plain BSON where
  BSON holds them exactly, and tags the rest. It never runs code on load.
* :class:`JSONSerializer` stores a JSON string.
* :class:`PickleSerializer` is opt-in and signs every payload with a secret;
  a payload whose signature does not verify is never unpickled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import pickle
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from bson.int64 import Int64

from .exceptions import ConfigurationError, SerializationError

__all__ = [
    "NATIVE_HINT",
    "JSONSerializer",
    "NativeSerializer",
    "PickleSerializer",
    "Serializer",
    "get_serializer",
]

#: What the native serializer stores, and the way out for other objects.
NATIVE_HINT = (
    "the native serializer stores str, int, float, bool, None, bytes, list, dict, tuple, "
    "set, frozenset, datetime, date, time, timedelta, Decimal, UUID and Markup; for other "
    "objects (ORM instances, responses ...) use serializer='pickle' with a serializer_secret"
)

try:  # markupsafe ships with Flask and Jinja; it is optional here.
    from markupsafe import Markup
except ImportError:  # pragma: no cover
    Markup = None  # type: ignore[assignment,misc]


@runtime_checkable
class Serializer(Protocol):
    """What the manager needs of a serializer."""

    def dumps(self, value: Any) -> Any: ...

    def loads(self, data: Any) -> Any: ...


TAG = "~t"
_INT64 = (-(2**63), 2**63)


def _plain_key(key: object) -> bool:
    return (
        type(key) is str
        and key != ""
        and key != TAG
        and key[0] != "$"
        and "." not in key
        and "\x00" not in key
    )


#: Types that load as themselves (BSON's ``Int64`` is converted, so not here).
_AS_IS = frozenset({str, int, bool, float, bytes, type(None)})


class NativeSerializer:
    """The safe default: native BSON where exact, tagged documents elsewhere.

    ``str``, ``bool``, ``None``, ``float``, 64-bit ``int``, ``bytes``,
    ``list`` and ``dict`` with plain string keys are stored as themselves, so
    sessions stay readable and queryable. ``tuple``, ``set``, ``frozenset``,
    large ``int``, ``dict`` with other keys, ``datetime`` (aware or naive),
    ``date``, ``time``, ``timedelta``, ``Decimal``, ``UUID`` and
    ``markupsafe.Markup`` are stored as ``{"~t": name, "v": ...}`` and come
    back as the same type. Anything else raises :class:`SerializationError`.
    """

    #: Integers are stored natively, so the manager may use ``$inc``.
    native_numbers = True

    def dumps(self, value: Any) -> Any:
        kind = type(value)
        if value is None or kind is str or kind is bool or kind is float:
            return value
        if kind is int:
            if _INT64[0] <= value < _INT64[1]:
                return value
            return {TAG: "int", "v": str(value)}
        if kind is bytes:
            return value
        if kind is list:
            return [self.dumps(item) for item in value]
        if kind is dict:
            if all(_plain_key(k) for k in value):
                return {k: self.dumps(v) for k, v in value.items()}
            return {TAG: "dict", "v": [[self.dumps(k), self.dumps(v)] for k, v in value.items()]}
        codec = _CODECS.get(kind)
        if codec is None:
            raise SerializationError(
                f"cannot store a value of type {kind.__name__!r}: {NATIVE_HINT}"
            )
        name, encode, _ = codec
        return {TAG: name, "v": encode(self, value)}

    def loads(self, data: Any) -> Any:
        kind = type(data)
        if kind is list:
            return [v if type(v) in _AS_IS else self.loads(v) for v in data]
        if kind is dict:
            name = data.get(TAG)
            if name is None:
                return {k: v if type(v) in _AS_IS else self.loads(v) for k, v in data.items()}
            if name == "int":
                return int(data["v"])
            if name == "dict":
                return {self.loads(k): self.loads(v) for k, v in data["v"]}
            return _DECODERS[name](self, data["v"])
        if kind is Int64:
            return int(data)
        return data


def _items(s: NativeSerializer, value: Any) -> list[Any]:
    return [s.dumps(item) for item in value]


def _loaded(s: NativeSerializer, value: list[Any]) -> list[Any]:
    return [s.loads(item) for item in value]


def _iso(s: NativeSerializer, value: Any) -> str:
    return str(value.isoformat())


_CODECS: dict[type, tuple[str, Callable[[NativeSerializer, Any], Any], Callable[..., Any]]] = {
    tuple: ("tuple", _items, lambda s, v: tuple(_loaded(s, v))),
    set: ("set", _items, lambda s, v: set(_loaded(s, v))),
    frozenset: ("frozenset", _items, lambda s, v: frozenset(_loaded(s, v))),
    dt.datetime: ("datetime", _iso, lambda s, v: dt.datetime.fromisoformat(v)),
    dt.date: ("date", _iso, lambda s, v: dt.date.fromisoformat(v)),
    dt.time: ("time", _iso, lambda s, v: dt.time.fromisoformat(v)),
    dt.timedelta: (
        "timedelta",
        lambda s, v: [v.days, v.seconds, v.microseconds],
        lambda s, v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    ),
    Decimal: ("decimal", lambda s, v: str(v), lambda s, v: Decimal(v)),
    uuid.UUID: ("uuid", lambda s, v: str(v), lambda s, v: uuid.UUID(v)),
}
if Markup is not None:
    _CODECS[Markup] = ("markup", lambda s, v: str(v), lambda s, v: Markup(v))
_DECODERS = {name: decode for name, _, decode in _CODECS.values()}


class JSONSerializer:
    """Stores a JSON string. Only JSON types round-trip (tuples become lists)."""

    def dumps(self, value: Any) -> str:
        try:
            return json.dumps(value, separators=(",", ":"))
        except (TypeError, ValueError):
            raise SerializationError(
                f"cannot store a value of type {type(value).__name__!r} as JSON"
            ) from None

    def loads(self, data: Any) -> Any:
        return json.loads(data)


class PickleSerializer:
    """Pickle, signed with HMAC-SHA256. Opt-in only.

    :param secret: the signing key (``str`` or ``bytes``, at least 16
        bytes). Required: without it anyone who can write to the collection
        could run code in every worker. A payload whose signature does not
        verify raises ``ValueError`` and is never unpickled.
    """

    _DIGEST = 32

    def __init__(self, secret: str | bytes | None) -> None:
        if not secret:
            raise ConfigurationError("the pickle serializer needs a secret to sign payloads")
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(key) < 16:
            raise ConfigurationError("the pickle serializer's secret must be at least 16 bytes")
        self._key = hashlib.sha256(b"mongo-session-backends:pickle:" + key).digest()

    def __repr__(self) -> str:
        return "PickleSerializer(secret=***)"

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def dumps(self, value: Any) -> bytes:
        try:
            payload = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        except Exception:
            raise SerializationError(
                f"cannot pickle a value of type {type(value).__name__!r}"
            ) from None
        return self._sign(payload) + payload

    def loads(self, data: Any) -> Any:
        data = bytes(data)
        signature, payload = data[: self._DIGEST], data[self._DIGEST :]
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise ValueError("pickle payload signature does not verify")
        return pickle.loads(payload)  # noqa: S301 - signed above


def get_serializer(spec: str | Serializer | None, secret: str | bytes | None = None) -> Serializer:
    """Return a serializer from a name or an object.

    :param spec: ``None`` or ``"native"`` (the default), ``"json"``,
        ``"pickle"``, or any object with ``dumps`` and ``loads``.
    :param secret: the signing secret, required for ``"pickle"``.
    """
    if spec is None or spec == "native":
        return NativeSerializer()
    if spec == "json":
        return JSONSerializer()
    if spec == "pickle":
        return PickleSerializer(secret)
    if isinstance(spec, str):
        raise ConfigurationError(f"unknown serializer {spec!r}; use native, json or pickle")
    if not (callable(getattr(spec, "dumps", None)) and callable(getattr(spec, "loads", None))):
        raise ConfigurationError("a serializer needs dumps() and loads() methods")
    return spec
