"""The shared MongoDB collection manager used by every adapter.

One :class:`MongoManager` owns a collection and all traffic to it. Each stored
entry is one document::

    {_id: <key>, value: <serialized value>, expires: <UTC datetime>, ns: <prefix>}

Reads look the id up and check ``expires`` against the manager's clock, so an
expired entry is never returned, even before MongoDB's TTL monitor removes
it. get, set, has, add, delete and touch are one command on the id index;
``incr`` is one command with the native serializer and no encryption.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import bson
import pymongo
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient, ReplaceOne, ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from .connection import (
    DEFAULT_URI,
    client_options,
    mask_uri,
    new_client,
    open_collection,
    translate,
)
from .connection import translated as _translated
from .crypto import Encryptor, KeyHasher
from .exceptions import (
    ConfigurationError,
    KeyTypeError,
    ManagerClosed,
    MongoSessionError,
    OperationError,
    SerializationError,
    ServerUnavailable,
    ValueTooLarge,
)
from .indexes import collection_stats, ensure_indexes, purge_expired
from .serializers import Serializer, get_serializer

__all__ = ["FAR_FUTURE", "MAX_TIMEOUT", "MongoManager", "mask_uri", "utcnow"]

log = logging.getLogger("mongo_session_backends")

#: Stored as the expiry of entries that never expire.
FAR_FUTURE = dt.datetime(9999, 12, 31, tzinfo=dt.timezone.utc)
#: The largest timeout in seconds (about 3,000 years), so expiries stay before FAR_FUTURE.
MAX_TIMEOUT = 10**11
VALUE = "value"
NS = "ns"
OWNER = "owner"  # the holder of a creation lock
MAX_DOCUMENT = 16 * 1024 * 1024
MAX_ID_BYTES = 1000  # older index-key limits; longer ids are hashed
_BATCH = 500  # long $in lists are sent in batches
_UNREADABLE = object()
_NOT_NUMBER_CODES = {14, 16554}
_INT64 = (-(2**63), 2**63)
_RETRY_INDEXES = (1.0, 60.0)  # first and longest wait before preparing indexes again
Timeout = int | float | dt.timedelta | None


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.timezone.utc)


def _uri_database(uri: str) -> str | None:
    rest = uri.partition("://")[2].partition("?")[0].rpartition("@")[2]
    path = rest.partition("/")[2]
    return path or None


def _aware(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def _seconds(value: Timeout, name: str) -> float | None:
    """``value`` in seconds; raise :class:`ConfigurationError` unless it is usable."""
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} must be seconds or a timedelta")
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or abs(seconds) > MAX_TIMEOUT:
        raise ConfigurationError(f"{name} must be a finite number of seconds up to {MAX_TIMEOUT}")
    return seconds


def _check_fields(id_field: Any, expires_key: Any, cleanup: str) -> None:
    """Refuse field names that are not plain or that collide with each other."""
    for name, value in (("id_field", id_field), ("expires_key", expires_key)):
        if (
            not isinstance(value, str)
            or not value
            or value.startswith("$")
            or "." in value
            or "\x00" in value
        ):
            raise ConfigurationError(f"{name} must be a plain, non-empty field name")
    reserved = {VALUE, NS, OWNER, *(["_ts"] if cleanup == "cosmos" else [])}
    if id_field in reserved or expires_key in reserved | {"_id"}:
        taken = ", ".join(sorted(reserved))
        raise ConfigurationError(
            f"id_field and expires_key must not be {taken} (fields the manager writes), "
            "and expires_key must not be _id"
        )
    if id_field == expires_key:
        raise ConfigurationError("id_field and expires_key must be different fields")


class _Connection:
    """The client, collection and index state shared by a manager's views."""

    def __init__(self, client: MongoClient[dict[str, Any]] | None) -> None:
        self.lock = threading.Lock()  # guards the fields below; held for no I/O
        self.client = client
        self.collection: Collection[dict[str, Any]] | None = None
        self.pid = os.getpid()
        self.indexes_ready = False
        self.retry_at = 0.0  # monotonic time before which index preparation is not retried
        self.retry_wait = _RETRY_INDEXES[0]
        self.closed = False


class MongoManager:
    """Stores expiring entries in one MongoDB collection.

    The constructor never touches the network, but checks everything it can
    without it: the URI, the client options, the database and collection
    names and every other option, raising
    :class:`~mongo_session_backends.ConfigurationError` with the reason. The
    client connects on first use, and indexes are created on first use (and
    tried again later if that fails).

    :param uri: MongoDB connection string (``mongodb://`` or
        ``mongodb+srv://``). Default ``mongodb://127.0.0.1:27017``.
    :param client: an existing :class:`~pymongo.MongoClient` to use instead
        of ``uri``; it is never closed by the manager. Give it
        ``tz_aware=True`` for aware datetimes in :meth:`stats`. A string is
        taken as ``uri``, as cachelib's ``MongoDbCache`` does.
    :param database_name: the database. Default: the URI's database, else
        ``"sessions"``.
    :param collection: the collection. Default ``"sessions"``.
    :param connection_options: keyword arguments for ``MongoClient``, over
        the defaults ``serverSelectionTimeoutMS=5000``,
        ``connectTimeoutMS=5000``, ``socketTimeoutMS=10000`` and
        ``tz_aware=True``. Values may be strings, converted by pymongo by
        each option's type. Add ``timeoutMS`` for one overall limit per
        operation, retries included. Pass ``{"journal": True}`` or
        ``{"w": "majority"}`` for stronger durability.
    :param expires: default lifetime of an entry, seconds or a
        ``timedelta``. Default 14 days. ``0`` means never. Used where an
        adapter gives no timeout of its own (see the configuration page).
    :param expires_key: the field holding the expiry. Default ``"expires"``.
    :param id_field: the field holding the key. Default ``"_id"``; any other
        field gets a unique index.
    :param expire_after_seconds: the TTL index's ``expireAfterSeconds``, the
        grace period before MongoDB deletes an expired entry. Default ``0``.
    :param cleanup: ``"ttl"`` (default) for a TTL index on ``expires_key``;
        ``"cosmos"`` for Azure Cosmos DB, a TTL index on ``_ts`` with
        ``expireAfterSeconds`` set to ``expires``; ``"none"`` for no index,
        with :meth:`purge_expired` run by a scheduled job.
    :param on_error: called with errors from preparing the collection
        (creating indexes). Default ``None``: such errors are logged and
        raised from the operation that triggered them. With a callable, the
        operation goes on without the indexes unless MongoDB is unreachable,
        and preparation is tried again after a growing wait (1 s up to 60 s).
    :param serializer: ``"native"`` (default), ``"json"``, ``"pickle"``, or
        an object with ``dumps`` and ``loads``.
    :param serializer_secret: the signing secret of the pickle serializer.
    :param encryption_keys: one key or a list of keys from
        :func:`~mongo_session_backends.generate_key`. When given, values are
        encrypted with AES-GCM; the first key encrypts, all decrypt. Default
        ``None`` (no encryption).
    :param hash_ids: store an HMAC-SHA256 of each key instead of the key.
        Default ``False``. Needs ``id_secret``; :meth:`keys` is then
        unavailable.
    :param id_secret: the HMAC key for ``hash_ids``.
    :param clock: a callable returning the current aware UTC datetime.
        Default :func:`utcnow`; tests pass a controllable clock.
    :param prefix: prepended to every key; :meth:`clear`, :meth:`keys` and
        :meth:`count` act on this prefix only. Default ``""``. Adapters
        nest their own prefixes under it.
    :param incr_mode: how :meth:`incr` runs. ``"find_and_modify"`` (default):
        one atomic ``findAndModify`` that returns the new value.
        ``"update_and_read"``: an atomic ``update`` then a ``find``, two
        commands, for servers whose ``findAndModify`` scans (such as the
        embedded test server); the total is exact, but the returned value may
        include increments other clients made in between.
    """

    def __init__(
        self,
        uri: str | None = None,
        *,
        client: MongoClient[Any] | str | None = None,
        database_name: str | None = None,
        collection: str = "sessions",
        connection_options: Mapping[str, Any] | None = None,
        expires: int | float | dt.timedelta = dt.timedelta(days=14),
        expires_key: str = "expires",
        id_field: str = "_id",
        expire_after_seconds: int = 0,
        cleanup: Literal["ttl", "cosmos", "none"] = "ttl",
        on_error: Callable[[BaseException], Any] | None = None,
        serializer: str | Serializer | None = None,
        serializer_secret: str | bytes | None = None,
        encryption_keys: str | bytes | Sequence[str | bytes] | None = None,
        hash_ids: bool = False,
        id_secret: str | bytes | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        prefix: str = "",
        incr_mode: Literal["find_and_modify", "update_and_read"] = "find_and_modify",
    ) -> None:
        if isinstance(client, str):
            if uri is not None:
                raise ConfigurationError("give uri or client, not both")
            uri, client = client, None
        if uri is not None and not isinstance(uri, str):
            raise ConfigurationError("uri must be a str")
        if client is not None and not isinstance(client, MongoClient):
            raise ConfigurationError("client must be a pymongo MongoClient or a URI")
        self.uri = uri or DEFAULT_URI
        self.database_name = database_name or _uri_database(self.uri) or "sessions"
        self.collection_name = collection
        if cleanup not in ("ttl", "cosmos", "none"):
            raise ConfigurationError("cleanup must be 'ttl', 'cosmos' or 'none'")
        if not isinstance(collection, str) or not collection:
            raise ConfigurationError("collection must be a non-empty name")
        _check_fields(id_field, expires_key, cleanup)
        self.expires = _seconds(expires, "expires") or 0.0
        if self.expires < 0:
            raise ConfigurationError("expires must not be negative")
        if isinstance(expire_after_seconds, bool) or not isinstance(expire_after_seconds, int):
            raise ConfigurationError("expire_after_seconds must be an int")
        if not 0 <= expire_after_seconds <= 2**31 - 1:
            raise ConfigurationError("expire_after_seconds must be from 0 to 2147483647")
        if cleanup == "cosmos" and not self.expires:
            raise ConfigurationError("cleanup='cosmos' needs a finite expires")
        if hash_ids and not id_secret:
            raise ConfigurationError("hash_ids needs id_secret")
        if incr_mode not in ("find_and_modify", "update_and_read"):
            raise ConfigurationError("incr_mode must be 'find_and_modify' or 'update_and_read'")
        if not callable(clock) or (on_error is not None and not callable(on_error)):
            raise ConfigurationError("clock and on_error must be callables")
        self.incr_mode = incr_mode
        self.expires_key = expires_key
        self.id_field = id_field
        self.expire_after_seconds = expire_after_seconds
        self.cleanup = cleanup
        self.on_error = on_error
        self.serializer: Serializer = get_serializer(serializer, serializer_secret)
        self.clock = clock
        self._options = client_options(connection_options)
        self._own_client = client is None
        if client is None:
            client = new_client(self.uri, self._options)
        self._cipher = Encryptor(encryption_keys) if encryption_keys else None
        self._hasher = KeyHasher(id_secret) if hash_ids and id_secret else None
        self._conn = _Connection(client)
        self._conn.collection = open_collection(client, self.database_name, collection)
        self._set_prefix(prefix)

    def _set_prefix(self, prefix: str) -> None:
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a str")
        self.prefix = prefix
        self._ns = self._hasher("ns:" + prefix) if self._hasher and prefix else prefix

    def with_prefix(self, prefix: str) -> MongoManager:
        """Return a view of this manager for its prefix followed by ``prefix``.

        Prefixes nest: a view of a manager made with ``prefix="app1:"`` for
        ``"cache:"`` stores under ``"app1:cache:"``, so two apps that share a
        collection under their own prefixes never see each other's keys.
        The view shares the connection, indexes and options. Closing either
        closes both.
        """
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a str")
        view = object.__new__(MongoManager)
        view.__dict__.update(self.__dict__)
        view._set_prefix(self.prefix + prefix)
        return view

    def __repr__(self) -> str:
        return (
            f"MongoManager(uri={mask_uri(self.uri)!r}, database_name={self.database_name!r}, "
            f"collection={self.collection_name!r})"
        )

    # -- connection -------------------------------------------------------

    @property
    def client(self) -> MongoClient[dict[str, Any]]:
        """The ``MongoClient`` in use (it connects on its first command)."""
        with self._conn.lock:
            return self._open().database.client

    def _collection(self) -> Collection[dict[str, Any]]:
        """The collection, prepared on first use. Network calls hold no lock."""
        conn = self._conn
        if conn.indexes_ready and conn.pid == os.getpid():
            assert conn.collection is not None
            return conn.collection
        with conn.lock:
            collection = self._open()
        if not conn.indexes_ready and time.monotonic() >= conn.retry_at:
            self._prepare(collection)
        return collection

    def _prepare(self, collection: Collection[dict[str, Any]]) -> None:
        """Create the indexes; on failure, raise or report and retry later."""
        conn = self._conn
        try:
            ensure_indexes(collection, self._wanted_indexes())
        except (PyMongoError, MongoSessionError) as exc:
            error = translate(exc) if isinstance(exc, PyMongoError) else exc
            log.warning("could not prepare the session collection: %s", type(error).__name__)
            if self.on_error is None:
                raise error from None  # and tried again by the next operation
            with conn.lock:
                conn.retry_at = time.monotonic() + conn.retry_wait
                conn.retry_wait = min(conn.retry_wait * 2, _RETRY_INDEXES[1])
            self.on_error(error)
            if isinstance(error, ServerUnavailable):
                raise error from None  # the operation itself could not succeed either
            return
        with conn.lock:
            conn.indexes_ready = True
            conn.retry_wait = _RETRY_INDEXES[0]

    def _open(self) -> Collection[dict[str, Any]]:
        """The collection, with a client for this process. Call under the lock."""
        conn = self._conn
        if conn.closed:
            raise ManagerClosed("this manager is closed; create a new one")
        pid = os.getpid()
        if conn.client is None or conn.collection is None or conn.pid != pid:
            # After fork the parent's client must not be used or closed.
            if self._own_client:
                conn.client = new_client(self.uri, self._options)
            assert conn.client is not None
            conn.pid = pid
            conn.indexes_ready = False
            conn.collection = conn.client[self.database_name][self.collection_name]
        return conn.collection

    @_translated
    def ping(self, timeout: float = 5.0) -> bool:
        """Return ``True`` if MongoDB answers within ``timeout`` seconds.

        Raises :class:`~mongo_session_backends.ServerUnavailable` otherwise.
        """
        with self._conn.lock:
            collection = self._open()
        with pymongo.timeout(timeout):
            collection.database.client.admin.command("ping")
        return True

    def close(self) -> None:
        """Close the client if the manager created it. Idempotent.

        Any later operation raises :class:`~mongo_session_backends.ManagerClosed`.
        """
        conn = self._conn
        with conn.lock:
            if conn.client is not None and self._own_client and conn.pid == os.getpid():
                conn.client.close()
            conn.client = conn.collection = None
            conn.indexes_ready = False
            conn.closed = True

    # -- indexes ----------------------------------------------------------

    @_translated
    def ensure_indexes(self) -> list[str]:
        """Create or fix the indexes this manager needs; return what was done."""
        with self._conn.lock:
            collection = self._open()
        done = ensure_indexes(collection, self._wanted_indexes())
        with self._conn.lock:
            self._conn.indexes_ready = True
        return done

    def _wanted_indexes(self) -> list[tuple[str, dict[str, Any]]]:
        wanted: list[tuple[str, dict[str, Any]]] = [(NS, {})]
        if self.cleanup == "ttl":
            wanted.append((self.expires_key, {"expireAfterSeconds": self.expire_after_seconds}))
        elif self.cleanup == "cosmos":
            wanted.append(("_ts", {"expireAfterSeconds": int(self.expires)}))
        if self.id_field != "_id":
            wanted.append((self.id_field, {"unique": True}))
        return wanted

    # -- encoding ---------------------------------------------------------

    def _now(self) -> dt.datetime:
        return self.clock()

    def _expiry(self, timeout: Timeout, now: dt.datetime) -> dt.datetime:
        seconds = self.expires if timeout is None else _seconds(timeout, "timeout")
        if not seconds:
            return FAR_FUTURE
        return now + dt.timedelta(seconds=seconds)

    def _id(self, key: str | bytes) -> str:
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
        if self._hasher is not None:
            return self._hasher(full)
        if size > MAX_ID_BYTES:
            return self.prefix + "#" + hashlib.sha256(key.encode("utf-8")).hexdigest()
        return full

    def _dump(self, _id: str, value: Any, serializer: Serializer | None) -> Any:
        try:
            data = (serializer or self.serializer).dumps(value)
        except MongoSessionError:
            raise
        except Exception:
            raise SerializationError(
                f"the serializer cannot store a value of type {type(value).__name__!r}"
            ) from None
        if self._cipher is not None:
            data = self._cipher.encrypt(bson.encode({"v": data}), _id.encode("utf-8"))
        if isinstance(data, (bytes, str)) and len(data) > MAX_DOCUMENT:
            raise ValueTooLarge("the value exceeds MongoDB's 16 MB limit; nothing was written")
        return data

    def _document(
        self,
        _id: str,
        value: Any,
        timeout: Timeout,
        now: dt.datetime,
        serializer: Serializer | None,
    ) -> dict[str, Any]:
        return {
            self.id_field: _id,
            VALUE: self._dump(_id, value, serializer),
            self.expires_key: self._expiry(timeout, now),
            NS: self._ns,
        }

    def _load(self, doc: Mapping[str, Any], default: Any, serializer: Serializer | None) -> Any:
        try:
            data = doc[VALUE]
            if self._cipher is not None:
                plain = self._cipher.decrypt(data, str(doc[self.id_field]).encode("utf-8"))
                data = bson.decode(plain)["v"]
            return (serializer or self.serializer).loads(data)
        except Exception as exc:
            log.warning("unreadable entry treated as a miss (%s)", type(exc).__name__)
            return default

    def _live(self, _id: Any, now: dt.datetime) -> dict[str, Any]:
        """The filter for a conditional write: ``_id`` and a live expiry."""
        return {self.id_field: _id, self.expires_key: {"$gt": now}}

    def _live_expiry(self, doc: Mapping[str, Any] | None, now: dt.datetime) -> dt.datetime | None:
        """The expiry of ``doc`` if it is live at ``now``; else ``None``.

        Reads look documents up by id alone, the cheapest query on every
        server, and apply the expiry here with the same clock a filter
        would use. A missing or malformed expiry counts as expired.
        """
        expires = None if doc is None else _aware(doc.get(self.expires_key))
        if isinstance(expires, dt.datetime) and expires > now:
            return expires
        return None

    # -- operations ---------------------------------------------------------

    @_translated
    def get(
        self, key: str | bytes, default: Any = None, *, serializer: Serializer | None = None
    ) -> Any:
        """Return the live value stored under ``key``, else ``default``.

        :param serializer: overrides the manager's serializer for this call.
        """
        entry = self.get_entry(key, serializer=serializer)
        return default if entry is None else entry[0]

    @_translated
    def get_entry(
        self, key: str | bytes, *, serializer: Serializer | None = None
    ) -> tuple[Any, dt.datetime] | None:
        """Return ``(value, expiry)`` of the live entry under ``key``, else ``None``.

        The expiry is an aware UTC datetime (:data:`FAR_FUTURE` for never).
        An unreadable entry is ``None`` too.
        """
        _id = self._id(key)
        now = self._now()
        doc = self._collection().find_one({self.id_field: _id})
        expires = self._live_expiry(doc, now)
        if doc is None or expires is None:
            return None
        value = self._load(doc, _UNREADABLE, serializer)
        if value is _UNREADABLE:
            return None
        return value, expires

    @_translated
    def get_many(
        self,
        keys: Iterable[str | bytes],
        default: Any = None,
        *,
        serializer: Serializer | None = None,
    ) -> list[Any]:
        """Return the values for ``keys`` in order, ``default`` where missing."""
        ids = [self._id(k) for k in keys]
        if not ids:
            return []
        now = self._now()
        found: dict[Any, Any] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _BATCH):
            query = {self.id_field: {"$in": unique[start : start + _BATCH]}}
            docs = self._collection().find(query)
            found.update((d[self.id_field], d) for d in docs if self._live_expiry(d, now))
        return [self._load(found[i], default, serializer) if i in found else default for i in ids]

    @_translated
    def set(
        self,
        key: str | bytes,
        value: Any,
        timeout: Timeout = None,
        *,
        serializer: Serializer | None = None,
        only_if_live: bool = False,
    ) -> bool:
        """Store ``value`` under ``key``; return whether it was written.

        :param timeout: seconds or a ``timedelta``; ``None`` for the default
            ``expires``; ``0`` for never (also over a finite expiry).
        :param only_if_live: write only over a live entry, never create one
            (so a late write cannot resurrect a deleted session).
        """
        _id = self._id(key)
        now = self._now()
        doc = self._document(_id, value, timeout, now, serializer)
        if only_if_live:
            result = self._collection().replace_one(self._live(_id, now), doc)
            return result.matched_count == 1
        self._collection().replace_one({self.id_field: _id}, doc, upsert=True)
        return True

    @_translated
    def set_many(
        self,
        mapping: Mapping[Any, Any],
        timeout: Timeout = None,
        *,
        serializer: Serializer | None = None,
    ) -> list[Any]:
        """Store every item of ``mapping`` in one bulk write; return the keys.

        Every value is serialized and size-checked before anything is sent.
        """
        now = self._now()
        requests: list[ReplaceOne[Any]] = []
        for key, value in mapping.items():
            doc = self._document(self._id(key), value, timeout, now, serializer)
            # Encoded once here, to check the size; pymongo sends the bytes as they are.
            raw = RawBSONDocument(bson.encode(doc))
            if len(raw.raw) > MAX_DOCUMENT:
                raise ValueTooLarge("a value exceeds MongoDB's 16 MB limit; nothing was written")
            requests.append(ReplaceOne({self.id_field: doc[self.id_field]}, raw, upsert=True))
        if requests:
            self._collection().bulk_write(requests, ordered=False)
        return list(mapping)

    @_translated
    def add(
        self,
        key: str | bytes,
        value: Any,
        timeout: Timeout = None,
        *,
        serializer: Serializer | None = None,
    ) -> bool:
        """Store ``value`` only if no live, readable entry exists; atomic.

        An expired entry counts as absent, and so does one that cannot be
        read (for instance, encrypted with a key since removed). Returns
        whether it was stored. One command when the key is free; when a live
        entry holds it, one more reads that entry to check it is readable.
        """
        _id = self._id(key)
        now = self._now()
        doc = self._document(_id, value, timeout, now, serializer)
        return self._insert_if_absent(doc, now) or self._replace_unreadable(doc, now, serializer)

    def _insert_if_absent(self, doc: dict[str, Any], now: dt.datetime) -> bool:
        """Write ``doc`` unless a live document has its id: one atomic upsert."""
        expired = {self.id_field: doc[self.id_field], self.expires_key: {"$lte": now}}
        try:
            self._collection().replace_one(expired, doc, upsert=True)
        except DuplicateKeyError:
            return False
        return True

    def _replace_unreadable(
        self, doc: dict[str, Any], now: dt.datetime, serializer: Serializer | None
    ) -> bool:
        """Replace the live entry under ``doc``'s id with ``doc`` if it cannot be read.

        The replacement is filtered on the unreadable document's value and
        expiry, so an entry rewritten meanwhile is left alone.
        """
        collection = self._collection()
        current = collection.find_one({self.id_field: doc[self.id_field]})
        if current is None or self._live_expiry(current, now) is None:
            return False  # gone or expired since the add: another writer got there
        if self._load(current, _UNREADABLE, serializer) is not _UNREADABLE:
            return False
        unchanged = {
            "_id": current["_id"],
            VALUE: current.get(VALUE),
            self.expires_key: current.get(self.expires_key),
        }
        return collection.replace_one(unchanged, doc).matched_count == 1

    @_translated
    def incr(
        self,
        key: str | bytes,
        delta: int = 1,
        timeout: Timeout = None,
        *,
        serializer: Serializer | None = None,
    ) -> int:
        """Add ``delta`` to an integer entry atomically; return the new value.

        A missing, expired or unreadable entry starts at ``delta`` with the
        given ``timeout``; a live entry keeps its expiry. Arithmetic is exact
        for integers of any size. A stored value that is not an integer (a
        float, a string ...) raises
        :class:`~mongo_session_backends.SerializationError` and is left
        unchanged.

        With the native serializer and no encryption this is one
        ``findAndModify`` while the value fits in 64 bits; otherwise a
        compare-and-swap loop of two commands.
        """
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise SerializationError("delta must be an int")
        _id = self._id(key)
        s = serializer or self.serializer
        native = getattr(s, "native_numbers", False) and self._cipher is None
        if native and _INT64[0] <= delta < _INT64[1]:
            return self._incr_native(key, _id, delta, timeout, serializer)
        return self._incr_swap(key, _id, delta, timeout, serializer)

    def _incr_update(self, delta: int, timeout: Timeout, now: dt.datetime) -> list[Any]:
        """The pipeline update of a native ``incr``.

        A sum that is not a 64-bit integer (an overflow, or a stored float or
        other value) evaluates an invalid ``$add``, so the command fails and
        writes nothing; :meth:`incr` then takes the exact, slower path.
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
                    self.expires_key: {"$cond": [live, field, self._expiry(timeout, now)]},
                    NS: {"$literal": self._ns},
                }
            }
        ]

    def _incr_native(
        self,
        key: str | bytes,
        _id: str,
        delta: int,
        timeout: Timeout,
        serializer: Serializer | None,
    ) -> int:
        update = self._incr_update(delta, timeout, self._now())
        collection = self._collection()
        for _ in range(3):
            try:
                if self.incr_mode == "update_and_read":
                    collection.update_one({self.id_field: _id}, update, upsert=True)
                    doc = None
                else:
                    doc = collection.find_one_and_update(
                        {self.id_field: _id},
                        update,
                        projection={VALUE: True},
                        upsert=True,
                        return_document=ReturnDocument.AFTER,
                    )
            except DuplicateKeyError:  # two upserts raced; the next try updates
                continue
            except OperationFailure as exc:
                if exc.code in _NOT_NUMBER_CODES:  # not a 64-bit integer: nothing written
                    return self._incr_swap(key, _id, delta, timeout, serializer)
                raise
            if doc is None:  # update_and_read, or a server's None for a raced upsert
                doc = collection.find_one({self.id_field: _id}, {VALUE: True})
            if doc is not None:
                value = doc.get(VALUE)
                if isinstance(value, bool) or not isinstance(value, int):
                    raise SerializationError("the stored value is not an integer")
                return value
        raise OperationError("incr did not settle after 3 attempts")

    def _incr_swap(
        self,
        key: str | bytes,
        _id: str,
        delta: int,
        timeout: Timeout,
        serializer: Serializer | None,
    ) -> int:
        collection = self._collection()
        for _ in range(100):
            now = self._now()
            doc = collection.find_one({self.id_field: _id})
            live = doc is not None and self._live_expiry(doc, now) is not None
            current = self._load(doc, _UNREADABLE, serializer) if doc and live else _UNREADABLE
            if current is _UNREADABLE:  # missing, expired or unreadable: start again
                if self.add(key, delta, timeout, serializer=serializer):
                    return delta
                continue
            assert doc is not None
            if isinstance(current, bool) or not isinstance(current, int):
                raise SerializationError(
                    "incr needs an integer, and the stored value is not one; it is unchanged"
                )
            new = {**doc, VALUE: self._dump(_id, current + delta, serializer)}
            unchanged = {"_id": doc["_id"], VALUE: doc.get(VALUE)}
            if collection.replace_one(unchanged, new).matched_count:
                return current + delta
        raise OperationError("incr did not settle: too much contention")

    @_translated
    def touch(self, key: str | bytes, timeout: Timeout = None) -> bool:
        """Give a live entry a new expiry without rewriting its value.

        Returns whether a live entry was found. Never creates one.
        """
        _id = self._id(key)
        now = self._now()
        result = self._collection().update_one(
            self._live(_id, now), {"$set": {self.expires_key: self._expiry(timeout, now)}}
        )
        return result.matched_count == 1

    @_translated
    def delete(self, key: str | bytes) -> bool:
        """Delete ``key``; return whether a stored entry was removed.

        An expired entry that the TTL monitor has not removed yet is removed
        too and counts, as in cachelib's ``SimpleCache`` and
        :meth:`delete_many`.
        """
        query = {self.id_field: self._id(key)}
        return self._collection().delete_one(query).deleted_count == 1

    @_translated
    def delete_many(self, keys: Iterable[str | bytes]) -> int:
        """Delete ``keys`` in batched commands; return how many were stored."""
        ids = list(dict.fromkeys(self._id(k) for k in keys))
        deleted = 0
        for start in range(0, len(ids), _BATCH):
            query = {self.id_field: {"$in": ids[start : start + _BATCH]}}
            deleted += self._collection().delete_many(query).deleted_count
        return deleted

    @_translated
    def has(self, key: str | bytes, *, serializer: Serializer | None = None) -> bool:
        """Return whether a live, readable entry exists (also when its value is ``None``).

        :param serializer: overrides the manager's serializer for this call.
        """
        return self.get_entry(key, serializer=serializer) is not None

    @_translated
    def acquire_lock(self, key: str | bytes, token: str, ttl: float) -> bool:
        """Take the lock named ``key`` for ``token`` if it is free; atomic.

        The lock frees itself after ``ttl`` seconds, so a dead holder does
        not block others for ever. Locks live beside the entries and are not
        listed by :meth:`keys` or :meth:`count`.
        """
        lock_id = "lock:" + self._id(key)
        now = self._now()
        doc = {
            self.id_field: lock_id,
            OWNER: token,
            self.expires_key: now + dt.timedelta(seconds=ttl),
            NS: "lock:" + self._ns,
        }
        return self._insert_if_absent(doc, now)

    @_translated
    def release_lock(self, key: str | bytes, token: str) -> bool:
        """Release the lock named ``key`` if ``token`` holds it."""
        query = {self.id_field: "lock:" + self._id(key), OWNER: token}
        return self._collection().delete_one(query).deleted_count == 1

    def _prefix_query(self, now: dt.datetime | None) -> dict[str, Any]:
        query: dict[str, Any] = {NS: self._ns}
        if now is not None:
            query[self.expires_key] = {"$gt": now}
        return query

    @_translated
    def keys(self) -> list[str]:
        """Return the live keys of this prefix, without the prefix.

        Keys longer than 1,000 bytes are stored hashed and listed as
        ``"#<sha256>"``. Unavailable with ``hash_ids``.
        """
        if self._hasher is not None:
            raise ConfigurationError("keys cannot be listed when hash_ids is on")
        cursor = self._collection().find(self._prefix_query(self._now()), {self.id_field: True})
        cut = len(self.prefix)
        # Read the cursor here, so a server error is translated like any other.
        return [
            doc[self.id_field][cut:] for doc in cursor if isinstance(doc.get(self.id_field), str)
        ]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    @_translated
    def count(self, *, all_prefixes: bool = False) -> int:
        """Return the number of live entries under this prefix.

        :param all_prefixes: count the live entries of every prefix (and any
            live creation locks) instead. Default ``False``.
        """
        if all_prefixes:
            query = {self.expires_key: {"$gt": self._now()}}
        else:
            query = self._prefix_query(self._now())
        return self._collection().count_documents(query)

    @_translated
    def clear(self) -> int:
        """Delete every entry under this prefix (and only those); keep indexes.

        Returns the number of documents deleted.
        """
        return self._collection().delete_many(self._prefix_query(None)).deleted_count

    @_translated
    def purge_expired(
        self, *, batch_size: int = 1000, progress: Callable[[int], Any] | None = None
    ) -> int:
        """Delete every expired entry in the collection; return how many.

        For ``cleanup="none"`` deployments, run it from a scheduled job.

        :param batch_size: documents deleted per command, so no single
            command runs long. Default 1000.
        :param progress: called with the running total after each batch.
            Default ``None``.
        """
        query = {self.expires_key: {"$lte": self._now()}}
        with self._conn.lock:
            collection = self._open()  # needs none of the indexes
        return purge_expired(collection, query, batch_size=batch_size, progress=progress)

    @_translated
    def stats(self, *, progress: Callable[[str], Any] | None = None) -> dict[str, Any]:
        """Return entry counts, document sizes and the indexes present.

        Reads only: it creates no index, and reports missing or wrong ones.

        :param progress: called with a short description of each step of a
            long scan. Default ``None``.
        """
        with self._conn.lock:
            collection = self._open()
        now = self._now()
        live = {self.expires_key: {"$gt": now}}
        expired = {self.expires_key: {"$lte": now}}
        return collection_stats(
            collection, self._wanted_indexes(), live, expired, progress=progress
        )
