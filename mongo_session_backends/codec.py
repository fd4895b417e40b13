"""How keys, values and expiries become MongoDB documents and filters, and back.

Nothing here performs I/O. The sync and async managers share one
:class:`Codec` (through :class:`~mongo_session_backends.core.Core`), so both
write the same documents and read each other's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import bson
from bson.binary import Binary

from .config import as_bool, coerce
from .crypto import Encryptor, KeyHasher
from .exceptions import (
    ConfigurationError,
    KeyTypeError,
    MongoSessionError,
    SerializationError,
    ValueTooLarge,
)
from .serializers import Serializer, get_serializer

__all__ = [
    "FAR_FUTURE",
    "FROM_VALUE",
    "MAX_TIMEOUT",
    "Codec",
    "Timeout",
    "utcnow",
]

log = logging.getLogger("mongo_session_backends")

#: Stored as the expiry of entries that never expire.
FAR_FUTURE = dt.datetime(9999, 12, 31, tzinfo=dt.timezone.utc)
#: The largest timeout in seconds (about 3,000 years), so expiries stay before FAR_FUTURE.
MAX_TIMEOUT = 10**11
VALUE = "value"
NS = "ns"
OWNER = "owner"  # the holder of a creation lock
USER = "user"  # the owner of a session (its user id, or an HMAC of it)
HANDLE = "handle"  # an opaque name of a session, safe to show its owner
CREATED = "created"
WRITTEN = "written"
REVOKED = "revoked"
#: The fields the manager writes besides the id and the expiry.
RESERVED = frozenset({VALUE, NS, OWNER, USER, HANDLE, CREATED, WRITTEN, REVOKED})
#: The owner of a write is found in the value (a session dict) under ``owner_key``.
FROM_VALUE: Any = object()
MAX_DOCUMENT = 16 * 1024 * 1024
MAX_ID_BYTES = 1000  # older index-key limits; longer ids are hashed
UNREADABLE: Any = object()
ENCRYPTED = 0x80  # the BSON binary subtype (user-defined) of an encrypted value
Timeout = int | float | dt.timedelta | None
Cleanup = Literal["ttl", "cosmos", "none"]


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.timezone.utc)


def aware(value: Any) -> Any:
    """``value`` with UTC attached if it is a naive datetime."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def seconds(value: Timeout, name: str) -> float | None:
    """``value`` in seconds; raise :class:`ConfigurationError` unless it is usable."""
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        number = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be seconds or a timedelta")
    else:
        number = float(value)
    if not math.isfinite(number) or abs(number) > MAX_TIMEOUT:
        raise ConfigurationError(f"{name} must be a finite number of seconds up to {MAX_TIMEOUT}")
    return number


def _check_fields(id_field: Any, expires_key: Any, cleanup: str) -> None:
    """Refuse field names that are not plain or that collide with each other."""
    for name, value in (("id_field", id_field), ("expires_key", expires_key)):
        plain = isinstance(value, str) and value and not value.startswith("$")
        if not plain or "." in value or "\x00" in value:
            raise ConfigurationError(f"{name} must be a plain, non-empty field name")
    reserved = {*RESERVED, *(["_ts"] if cleanup == "cosmos" else [])}
    if id_field in reserved or expires_key in reserved | {"_id"}:
        taken = ", ".join(sorted(reserved))
        raise ConfigurationError(
            f"id_field and expires_key must not be {taken} (fields the manager writes), "
            "and expires_key must not be _id"
        )
    if id_field == expires_key:
        raise ConfigurationError("id_field and expires_key must be different fields")


class Codec:
    """The manager options that decide what is stored, checked once.

    The parameters are the :class:`~mongo_session_backends.MongoManager`
    options of the same names.
    """

    def __init__(
        self,
        *,
        expires: int | float | dt.timedelta = dt.timedelta(days=14),
        expires_key: str = "expires",
        id_field: str = "_id",
        expire_after_seconds: int = 0,
        cleanup: Cleanup = "ttl",
        serializer: str | Serializer | None = None,
        serializer_secret: str | bytes | None = None,
        encryption_keys: str | bytes | Sequence[str | bytes] | None = None,
        hash_ids: bool = False,
        id_secret: str | bytes | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        prefix: str = "",
        incr_mode: Literal["find_and_modify", "update_and_read"] = "find_and_modify",
        owner_key: str | None = None,
    ) -> None:
        if cleanup not in ("ttl", "cosmos", "none"):
            raise ConfigurationError("cleanup must be 'ttl', 'cosmos' or 'none'")
        _check_fields(id_field, expires_key, cleanup)
        self.expires = seconds(expires, "expires") or 0.0
        if self.expires < 0:
            raise ConfigurationError("expires must not be negative")
        if isinstance(expire_after_seconds, bool) or not isinstance(expire_after_seconds, int):
            raise ConfigurationError("expire_after_seconds must be an int")
        if not 0 <= expire_after_seconds <= 2**31 - 1:
            raise ConfigurationError("expire_after_seconds must be from 0 to 2147483647")
        if cleanup == "cosmos" and not self.expires:
            raise ConfigurationError("cleanup='cosmos' needs a finite expires")
        hash_ids = coerce("hash_ids", hash_ids, as_bool)  # "false" must not mean True
        if hash_ids and not id_secret:
            raise ConfigurationError("hash_ids needs id_secret")
        if incr_mode not in ("find_and_modify", "update_and_read"):
            raise ConfigurationError("incr_mode must be 'find_and_modify' or 'update_and_read'")
        if not callable(clock):
            raise ConfigurationError("clock must be a callable")
        if owner_key is not None and (not isinstance(owner_key, str) or not owner_key):
            raise ConfigurationError("owner_key must be a non-empty session key, or None")
        self.owner_key = owner_key
        self.incr_mode = incr_mode
        self.expires_key = expires_key
        self.id_field = id_field
        self.expire_after_seconds = expire_after_seconds
        self.cleanup: Cleanup = cleanup
        self.serializer: Serializer = get_serializer(serializer, serializer_secret)
        self.clock = clock
        self.cipher = Encryptor(encryption_keys) if encryption_keys else None
        self.hasher = KeyHasher(id_secret) if hash_ids and id_secret else None
        self.set_prefix(prefix)

    def set_prefix(self, prefix: str) -> None:
        """Make ``prefix`` this codec's key prefix (and ``ns`` value)."""
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a str")
        self.prefix = prefix
        self.ns = self.hasher("ns:" + prefix) if self.hasher and prefix else prefix

    @property
    def native_incr(self) -> bool:
        """Whether ``incr`` can add on the server (stored numbers are plain)."""
        return getattr(self.serializer, "native_numbers", False) and self.cipher is None

    # -- keys, values and expiries ------------------------------------------------

    def now(self) -> dt.datetime:
        return self.clock()

    def expiry(self, timeout: Timeout, now: dt.datetime) -> dt.datetime:
        """The stored expiry for ``timeout`` (``None``: the default; ``0``: never)."""
        number = self.expires if timeout is None else seconds(timeout, "timeout")
        if not number:
            return FAR_FUTURE
        return now + dt.timedelta(seconds=number)

    def id(self, key: str | bytes) -> str:
        """The stored id of ``key``: prefixed, and hashed if asked or too long."""
        if type(key) is not str:
            if isinstance(key, (bytes, bytearray)):
                try:
                    key = bytes(key).decode("utf-8")
                except UnicodeDecodeError:
                    raise KeyTypeError("bytes keys must be UTF-8") from None
            elif isinstance(key, str):
                key = str(key)
            else:
                raise KeyTypeError(f"keys must be str or bytes, not {type(key).__name__}")
        full = self.prefix + key
        try:
            size = len(full.encode("utf-8"))
        except UnicodeEncodeError:
            raise KeyTypeError(
                "keys must be valid Unicode (this one has a lone surrogate)"
            ) from None
        if self.hasher is not None:
            return self.hasher(full)
        if size > MAX_ID_BYTES:
            return self.prefix + "#" + hashlib.sha256(key.encode("utf-8")).hexdigest()
        return full

    def dump(self, _id: str, value: Any, serializer: Serializer | None) -> Any:
        """The stored form of ``value``: serialized, then encrypted if asked."""
        try:
            data = (serializer or self.serializer).dumps(value)
        except MongoSessionError:
            raise
        except Exception:
            raise SerializationError(
                f"the serializer cannot store a value of type {type(value).__name__!r}"
            ) from None
        if self.cipher is not None:
            sealed = self.cipher.encrypt(bson.encode({"v": data}), _id.encode("utf-8"))
            data = Binary(sealed, ENCRYPTED)  # so a manager without keys cannot take it for bytes
        if isinstance(data, (bytes, str)) and len(data) > MAX_DOCUMENT:
            raise ValueTooLarge("the value exceeds MongoDB's 16 MB limit; nothing was written")
        return data

    def document(
        self,
        _id: str,
        value: Any,
        timeout: Timeout,
        now: dt.datetime,
        serializer: Serializer | None,
    ) -> dict[str, Any]:
        """The whole document stored for one entry."""
        return {
            self.id_field: _id,
            VALUE: self.dump(_id, value, serializer),
            self.expires_key: self.expiry(timeout, now),
            NS: self.ns,
        }

    def load(self, doc: Mapping[str, Any], default: Any, serializer: Serializer | None) -> Any:
        """The value stored in ``doc``, or ``default`` if it cannot be read."""
        try:
            data = doc[VALUE]
            if self.cipher is None and isinstance(data, Binary) and data.subtype == ENCRYPTED:
                raise ValueError("an encrypted entry, and this manager has no encryption keys")
            if self.cipher is not None:
                plain = self.cipher.decrypt(data, str(doc[self.id_field]).encode("utf-8"))
                data = bson.decode(plain)["v"]
            return (serializer or self.serializer).loads(data)
        except Exception as exc:
            log.warning("unreadable entry treated as a miss (%s)", type(exc).__name__)
            return default

    def live_expiry(self, doc: Mapping[str, Any] | None, now: dt.datetime) -> dt.datetime | None:
        """The expiry of ``doc`` if it is live at ``now``; else ``None``.

        Reads look documents up by id alone, the cheapest query on every
        server, and apply the expiry here with the same clock a filter
        would use. A missing or malformed expiry counts as expired, and a
        revoked session as gone.
        """
        if doc is None or doc.get(REVOKED):
            return None
        expires = aware(doc.get(self.expires_key))
        if isinstance(expires, dt.datetime) and expires > now:
            return expires
        return None

    # -- filters ------------------------------------------------------------------

    def by_id(self, _id: Any) -> dict[str, Any]:
        return {self.id_field: _id}

    def live(self, _id: Any, now: dt.datetime) -> dict[str, Any]:
        """The filter for a conditional write: the id and a live expiry."""
        return {self.id_field: _id, self.expires_key: {"$gt": now}}

    def expired(self, _id: Any, now: dt.datetime) -> dict[str, Any]:
        """The filter of an insert-if-absent: the id and an expired entry."""
        return {self.id_field: _id, self.expires_key: {"$lte": now}}

    def prefix_query(self, now: dt.datetime | None) -> dict[str, Any]:
        """The entries of this prefix (the live ones if ``now`` is given)."""
        query: dict[str, Any] = {NS: self.ns}
        if now is not None:
            query[self.expires_key] = {"$gt": now}
        return query

    # -- owners ---------------------------------------------------------------------

    def owner_of(self, value: Any, owner: Any) -> Any:
        """The owner of a write: ``owner``, or the value's ``owner_key`` entry.

        Returns a string, ``None`` for a session with no owner, or
        :data:`FROM_VALUE` when the value is opaque (bytes a framework
        encoded) and the stored owner must be kept as it is.
        """
        if owner is not FROM_VALUE:
            return None if owner is None else str(owner)
        if self.owner_key is None:
            return None
        if isinstance(value, Mapping):
            found = value.get(self.owner_key)
            return None if found is None else str(found)
        return FROM_VALUE

    def user(self, owner: Any) -> str:
        """The stored form of ``owner``: an HMAC of it when ids are hashed."""
        text = str(owner)
        return self.hasher("user:" + text) if self.hasher is not None else text

    def handle(self, _id: str) -> str:
        """An opaque name for a session: it reveals nothing of the session id."""
        return hashlib.sha256(b"handle:" + _id.encode("utf-8")).hexdigest()[:32]

    def owned_write(self, doc: dict[str, Any], owner: Any, now: dt.datetime) -> dict[str, Any]:
        """The update that writes ``doc`` for a session with an owner.

        Sets the value, the expiry, the prefix, the owner, the handle and
        the time written, and keeps the time created (``$min`` sets it where
        it is missing, as on a session written before its login). For an
        opaque value (``owner`` is :data:`FROM_VALUE`) the stored owner is
        kept; with ``owner`` ``None`` it is removed. A modifier update, not a
        pipeline: its values are stored as they are, never read as
        expressions, and MongoDB accepts ``$``-prefixed names nested in them.
        """
        fields = {k: v for k, v in doc.items() if k != self.id_field}
        fields[WRITTEN] = now
        update: dict[str, Any] = {"$set": fields, "$min": {CREATED: now}}
        if owner is None:
            update["$unset"] = {USER: "", HANDLE: ""}
        elif owner is not FROM_VALUE:
            fields[USER] = self.user(owner)
            fields[HANDLE] = self.handle(doc[self.id_field])
        return update

    def owner_query(self, owner: Any) -> dict[str, Any]:
        """The sessions of ``owner`` under this prefix, nested prefixes included.

        On the owner index; the prefix is a range on ``ns``, so a manager
        without a prefix (or an app's own prefix) reaches every adapter's
        sessions under it, Beaker's per-session namespaces too. With
        ``hash_ids`` prefixes are hashed, so only this exact prefix matches.
        """
        query: dict[str, Any] = {USER: self.user(owner)}
        if self.hasher is not None:
            query[NS] = self.ns
        elif self.prefix:
            query[NS] = self.nested()
        return query

    def nested(self) -> dict[str, Any]:
        """The ``ns`` values of this prefix and every prefix nested under it: a range.

        Raises :class:`ConfigurationError` with ``hash_ids``, which hides prefixes.
        """
        if self.hasher is not None:
            raise ConfigurationError("nested prefixes cannot be found when hash_ids is on")
        return {"$gte": self.prefix, "$lt": self.prefix + "\U0010ffff"}

    def wanted_indexes(self) -> list[tuple[str, dict[str, Any]]]:
        """The single-field indexes the collection needs, with their options."""
        wanted: list[tuple[str, dict[str, Any]]] = [(NS, {})]
        if self.cleanup == "ttl":
            wanted.append((self.expires_key, {"expireAfterSeconds": self.expire_after_seconds}))
        elif self.cleanup == "cosmos":
            wanted.append(("_ts", {"expireAfterSeconds": int(self.expires)}))
        if self.id_field != "_id":
            wanted.append((self.id_field, {"unique": True}))
        if self.owner_key is not None:
            # Sparse: sessions without an owner have no ``user`` field (it is unset, never
            # null), so they are not in the index and cost nothing. Sparse rather than
            # partial, which some MongoDB-compatible servers never plan a query on.
            wanted.append((USER, {"sparse": True}))
        return wanted

    def incr_update(self, delta: int, timeout: Timeout, now: dt.datetime) -> list[Any]:
        """The pipeline update of a native ``incr``.

        A sum that is not a 64-bit integer (an overflow, or a stored float or
        other value) evaluates an invalid ``$add``, so the command fails and
        writes nothing; ``incr`` then takes the exact, slower path. The
        prefix is a ``$literal``, since a string starting with ``$`` would
        read as a field path.
        """
        field = "$" + self.expires_key
        live = {"$gt": [field, now]}
        total = {"$add": ["$" + VALUE, delta]}
        invalid = {"$add": [{"$ifNull": ["$" + VALUE, 0]}, "not an integer"]}
        checked = {"$cond": [{"$in": [{"$type": total}, ["int", "long"]]}, total, invalid]}
        return [
            {
                "$set": {
                    VALUE: {"$cond": [live, checked, delta]},
                    self.expires_key: {"$cond": [live, field, self.expiry(timeout, now)]},
                    NS: {"$literal": self.ns},
                }
            }
        ]
