"""The operations of a manager, as plans that perform no I/O.

Each operation is a generator (a *plan*) that yields :class:`Call` objects,
one MongoDB command each, and receives their replies; errors from a command
are thrown back into the plan at the point it yielded. The sync
:class:`~mongo_session_backends.MongoManager` and the
:class:`~mongo_session_backends.AsyncMongoManager` only run the calls, so
both send exactly the same commands and read the replies the same way::

    steps = Steps(core.get("k"))
    for call in steps:
        steps.reply, steps.error = send(call, collection)  # one of them None
    value = steps.result
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import bson
from bson.errors import InvalidDocument
from bson.raw_bson import RawBSONDocument
from pymongo import ReplaceOne, ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from .codec import (
    CREATED,
    FROM_VALUE,
    HANDLE,
    MAX_DOCUMENT,
    NS,
    OWNER,
    REVOKED,
    UNREADABLE,
    USER,
    VALUE,
    WRITTEN,
    Codec,
    Timeout,
    aware,
)
from .connection import translate
from .exceptions import (
    ConfigurationError,
    IndexConflict,
    OperationError,
    SerializationError,
    ValueTooLarge,
)
from .indexes import differences
from .serializers import Serializer

__all__ = ["DRIVER_ERRORS", "Call", "Core", "Plan", "Steps"]

R = TypeVar("R")
#: A plan: yields calls, receives their replies, returns the operation's result.
Plan = Generator["Call", Any, R]
#: What a command can raise inside the driver; thrown into the plan, translated if it escapes.
DRIVER_ERRORS = (PyMongoError, InvalidDocument, UnicodeEncodeError, OverflowError)
BATCH = 500  # long $in lists are sent in batches
_NOT_NUMBER_CODES = {14, 16554}
_INT64 = (-(2**63), 2**63)
#: A revoked session keeps its id and expiry, and loses its value and owner.
_REVOKE = [{"$set": {REVOKED: True}}, {"$unset": [VALUE, USER, HANDLE]}]


@dataclass(frozen=True)
class Call:
    """One MongoDB command, as a method call on the collection.

    :param method: the pymongo method (``find_one``, ``replace_one`` ...).
    :param target: ``"collection"``, its ``"database"``, or the ``"admin"``
        database of its client.
    :param many: the reply is a cursor, to be read to the end into a list.
    """

    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    target: Literal["collection", "database", "admin"] = "collection"
    many: bool = False

    def bound(self, collection: Any) -> Any:
        """The method to call for ``collection`` (sync or async)."""
        if self.target == "collection":
            owner = collection
        elif self.target == "database":
            owner = collection.database
        else:
            owner = collection.database.client.admin
        return getattr(owner, self.method)


class Steps(Generic[R]):
    """Steps a plan through its calls; the driver performs each one.

    Iterate to get each call; before the next step, set :attr:`reply` to
    the call's reply or :attr:`error` to what it raised. When the plan ends,
    :attr:`result` holds its result. A driver error that the plan does not
    handle comes out as this package's own error (see
    :func:`~mongo_session_backends.connection.translate`).
    """

    def __init__(self, plan: Plan[R]) -> None:
        self._plan = plan
        self.reply: Any = None
        self.error: BaseException | None = None
        self.result: R

    def __iter__(self) -> Steps[R]:
        return self

    def __next__(self) -> Call:
        reply, error = self.reply, self.error
        self.reply = self.error = None
        try:
            if error is not None:
                return self._plan.throw(error)
            return self._plan.send(reply)
        except StopIteration as stop:
            self.result = stop.value
            raise StopIteration from None
        except DRIVER_ERRORS as exc:
            raise translate(exc) from None


class Core(Codec):
    """Every manager operation as a plan. The options are :class:`Codec`'s."""

    def view(self, prefix: str) -> Core:
        """A copy of this core whose prefix is followed by ``prefix``."""
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a str")
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.set_prefix(self.prefix + prefix)
        return copy

    # -- reads ----------------------------------------------------------------

    def get_entry(
        self, key: str | bytes, *, serializer: Serializer | None = None
    ) -> Plan[tuple[Any, dt.datetime] | None]:
        """Return ``(value, expiry)`` of the live entry under ``key``, else ``None``.

        The expiry is an aware UTC datetime (:data:`~mongo_session_backends.manager.FAR_FUTURE`
        for never). An unreadable entry is ``None`` too.
        """
        _id = self.id(key)
        now = self.now()
        doc = yield Call("find_one", (self.by_id(_id),))
        expires = self.live_expiry(doc, now)
        if doc is None or expires is None:
            return None
        value = self.load(doc, UNREADABLE, serializer)
        return None if value is UNREADABLE else (value, expires)

    def get(
        self, key: str | bytes, default: Any = None, *, serializer: Serializer | None = None
    ) -> Plan[Any]:
        """Return the live value stored under ``key``, else ``default``.

        :param serializer: overrides the manager's serializer for this call.
        """
        entry = yield from self.get_entry(key, serializer=serializer)
        return default if entry is None else entry[0]

    def has(self, key: str | bytes, *, serializer: Serializer | None = None) -> Plan[bool]:
        """Return whether a live, readable entry exists (also when its value is ``None``).

        :param serializer: overrides the manager's serializer for this call.
        """
        entry = yield from self.get_entry(key, serializer=serializer)
        return entry is not None

    def get_many(
        self,
        keys: Iterable[str | bytes],
        default: Any = None,
        *,
        serializer: Serializer | None = None,
    ) -> Plan[list[Any]]:
        """Return the values for ``keys`` in order, ``default`` where missing."""
        ids = [self.id(k) for k in keys]
        if not ids:
            return []
        now = self.now()
        found: dict[Any, Any] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), BATCH):
            query = {self.id_field: {"$in": unique[start : start + BATCH]}}
            docs = yield Call("find", (query,), many=True)
            found.update((d[self.id_field], d) for d in docs if self.live_expiry(d, now))
        return [self.load(found[i], default, serializer) if i in found else default for i in ids]

    # -- writes ---------------------------------------------------------------

    def set(
        self,
        key: str | bytes,
        value: Any,
        timeout: Timeout = None,
        *,
        serializer: Serializer | None = None,
        only_if_live: bool = False,
        owner: Any = FROM_VALUE,
    ) -> Plan[bool]:
        """Store ``value`` under ``key``; return whether it was written.

        :param timeout: seconds or a ``timedelta``; ``None`` for the default
            ``expires``; ``0`` for never (also over a finite expiry).
        :param only_if_live: write only over a live entry, never create one
            (so a late write cannot resurrect a deleted session).
        :param owner: the user id that owns this session, ``None`` for none.
            Default: the value's ``owner_key`` entry when the manager has an
            ``owner_key`` (an opaque value keeps the stored owner). A session
            with an owner is written in the same single command with its
            owner, and a revoked one is never written again: the result is
            then ``False``.
        """
        _id = self.id(key)
        now = self.now()
        doc = self.document(_id, value, timeout, now, serializer)
        who = self.owner_of(value, owner)
        if who is not None:
            return (yield from self._owned_set(doc, who, now, only_if_live))
        if only_if_live:
            result = yield Call("replace_one", (self.live(_id, now), doc))
            return bool(result.matched_count == 1)
        yield Call("replace_one", (self.by_id(_id), doc), {"upsert": True})
        return True

    def _owned_set(
        self, doc: dict[str, Any], who: Any, now: dt.datetime, only_if_live: bool
    ) -> Plan[bool]:
        _id = doc[self.id_field]
        query = self.live(_id, now) if only_if_live else self.by_id(_id)
        query[REVOKED] = {"$ne": True}
        update = self.owned_write(doc, who, now)
        try:
            result = yield Call("update_one", (query, update), {"upsert": not only_if_live})
        except DuplicateKeyError:  # the id holds a revoked session: it stays revoked
            return False
        return bool(result.matched_count == 1 or result.upserted_id is not None)

    def set_many(
        self,
        mapping: Mapping[Any, Any],
        timeout: Timeout = None,
        *,
        serializer: Serializer | None = None,
    ) -> Plan[list[Any]]:
        """Store every item of ``mapping`` in one bulk write; return the keys.

        Every value is serialized and size-checked before anything is sent.
        """
        now = self.now()
        requests: list[ReplaceOne[Any]] = []
        for key, value in mapping.items():
            doc = self.document(self.id(key), value, timeout, now, serializer)
            # Encoded once here, to check the size; pymongo sends the bytes as they are.
            try:
                raw = RawBSONDocument(bson.encode(doc))
            except DRIVER_ERRORS as exc:
                raise translate(exc) from None
            if len(raw.raw) > MAX_DOCUMENT:
                raise ValueTooLarge("a value exceeds MongoDB's 16 MB limit; nothing was written")
            requests.append(ReplaceOne(self.by_id(doc[self.id_field]), raw, upsert=True))
        if requests:
            yield Call("bulk_write", (requests,), {"ordered": False})
        return list(mapping)

    def add(
        self,
        key: str | bytes,
        value: Any,
        timeout: Timeout = None,
        *,
        serializer: Serializer | None = None,
        owner: Any = FROM_VALUE,
    ) -> Plan[bool]:
        """Store ``value`` only if no live, readable entry exists; atomic.

        An expired entry counts as absent, and so does one that cannot be
        read (for instance, encrypted with a key since removed). Returns
        whether it was stored. One command when the key is free; when a live
        entry holds it, one more reads that entry to check it is readable.

        :param owner: as for :meth:`set`.
        """
        _id = self.id(key)
        now = self.now()
        doc = self.document(_id, value, timeout, now, serializer)
        who = self.owner_of(value, owner)
        if who is not None and who is not FROM_VALUE:
            doc.update({USER: self.user(who), HANDLE: self.handle(_id)})
        if self.owner_key is not None:
            doc.update({CREATED: now, WRITTEN: now})
        if (yield from self.insert_if_absent(doc, now)):
            return True
        return (yield from self.replace_unreadable(doc, now, serializer))

    def insert_if_absent(self, doc: dict[str, Any], now: dt.datetime) -> Plan[bool]:
        """Write ``doc`` unless a live document has its id: one atomic upsert."""
        try:
            yield Call(
                "replace_one", (self.expired(doc[self.id_field], now), doc), {"upsert": True}
            )
        except DuplicateKeyError:
            return False
        return True

    def replace_unreadable(
        self, doc: dict[str, Any], now: dt.datetime, serializer: Serializer | None
    ) -> Plan[bool]:
        """Replace the live entry under ``doc``'s id with ``doc`` if it cannot be read.

        The replacement is filtered on the unreadable document's value and
        expiry, so an entry rewritten meanwhile is left alone.
        """
        current = yield Call("find_one", (self.by_id(doc[self.id_field]),))
        if current is None or self.live_expiry(current, now) is None:
            return False  # gone or expired since the add: another writer got there
        if self.load(current, UNREADABLE, serializer) is not UNREADABLE:
            return False
        unchanged = {
            self.id_field: current[self.id_field],
            VALUE: current.get(VALUE),
            self.expires_key: current.get(self.expires_key),
        }
        result = yield Call("replace_one", (unchanged, doc))
        return bool(result.matched_count == 1)

    def incr(
        self,
        key: str | bytes,
        delta: int = 1,
        timeout: Timeout = None,
        *,
        serializer: Serializer | None = None,
    ) -> Plan[int]:
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
        value = yield from self._incr(key, delta, timeout, serializer, create=True)
        assert value is not None
        return value

    def incr_live(
        self,
        key: str | bytes,
        delta: int = 1,
        *,
        serializer: Serializer | None = None,
    ) -> Plan[int | None]:
        """Add ``delta`` to a live integer entry atomically; ``None`` if there is none.

        As :meth:`incr`, but a missing, expired or unreadable entry is left
        missing (Django's ``incr`` raises then), in the same one command.
        """
        return (yield from self._incr(key, delta, None, serializer, create=False))

    def _incr(
        self,
        key: str | bytes,
        delta: int,
        timeout: Timeout,
        serializer: Serializer | None,
        create: bool,
    ) -> Plan[int | None]:
        if isinstance(delta, bool) or not isinstance(delta, int):
            raise SerializationError("delta must be an int")
        _id = self.id(key)
        native = getattr(serializer or self.serializer, "native_numbers", False)
        if native and self.cipher is None and _INT64[0] <= delta < _INT64[1]:
            return (yield from self._incr_native(key, _id, delta, timeout, serializer, create))
        return (yield from self._incr_swap(key, _id, delta, timeout, serializer, create))

    def _incr_native(
        self,
        key: str | bytes,
        _id: str,
        delta: int,
        timeout: Timeout,
        serializer: Serializer | None,
        create: bool,
    ) -> Plan[int | None]:
        now = self.now()
        update = self.incr_update(delta, timeout, now)
        query = self.by_id(_id) if create else self.live(_id, now)
        for _ in range(3):
            try:
                if self.incr_mode == "update_and_read":
                    result = yield Call("update_one", (query, update), {"upsert": create})
                    if not create and result.matched_count == 0:
                        return None
                    doc = None
                else:
                    doc = yield Call(
                        "find_one_and_update",
                        (query, update),
                        {
                            "projection": {VALUE: True},
                            "upsert": create,
                            "return_document": ReturnDocument.AFTER,
                        },
                    )
                    if doc is None and not create:
                        return None
            except DuplicateKeyError:  # two upserts raced; the next try updates
                continue
            except OperationFailure as exc:
                if exc.code in _NOT_NUMBER_CODES:  # not a 64-bit integer: nothing written
                    swap = self._incr_swap(key, _id, delta, timeout, serializer, create)
                    return (yield from swap)
                raise
            if doc is None:  # update_and_read, or a server's None for a raced upsert
                doc = yield Call("find_one", (self.by_id(_id), {VALUE: True}))
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
        create: bool,
    ) -> Plan[int | None]:
        for _ in range(100):
            now = self.now()
            doc = yield Call("find_one", (self.by_id(_id),))
            live = doc is not None and self.live_expiry(doc, now) is not None
            current = self.load(doc, UNREADABLE, serializer) if doc and live else UNREADABLE
            if current is UNREADABLE:  # missing, expired or unreadable: start again
                if not create:
                    return None
                if (yield from self.add(key, delta, timeout, serializer=serializer)):
                    return delta
                continue
            if isinstance(current, bool) or not isinstance(current, int):
                raise SerializationError(
                    "incr needs an integer, and the stored value is not one; it is unchanged"
                )
            new = {**doc, VALUE: self.dump(_id, current + delta, serializer)}
            unchanged = {self.id_field: doc[self.id_field], VALUE: doc.get(VALUE)}
            result = yield Call("replace_one", (unchanged, new))
            if result.matched_count:
                return current + delta
        raise OperationError("incr did not settle: too much contention")

    def touch(self, key: str | bytes, timeout: Timeout = None) -> Plan[bool]:
        """Give a live entry a new expiry without rewriting its value.

        Returns whether a live entry was found. Never creates one.
        """
        _id = self.id(key)
        now = self.now()
        update = {"$set": {self.expires_key: self.expiry(timeout, now)}}
        result = yield Call("update_one", (self.live(_id, now), update))
        return bool(result.matched_count == 1)

    def delete(self, key: str | bytes) -> Plan[bool]:
        """Delete ``key``; return whether a stored entry was removed.

        An expired entry that the TTL monitor has not removed yet is removed
        too and counts, as in cachelib's ``SimpleCache`` and
        :meth:`delete_many`.
        """
        result = yield Call("delete_one", (self.by_id(self.id(key)),))
        return bool(result.deleted_count == 1)

    def delete_many(self, keys: Iterable[str | bytes]) -> Plan[int]:
        """Delete ``keys`` in batched commands; return how many were stored."""
        ids = list(dict.fromkeys(self.id(k) for k in keys))
        deleted = 0
        for start in range(0, len(ids), BATCH):
            query = {self.id_field: {"$in": ids[start : start + BATCH]}}
            result = yield Call("delete_many", (query,))
            deleted += result.deleted_count
        return deleted

    # -- locks ------------------------------------------------------------------

    def acquire_lock(self, key: str | bytes, token: str, ttl: float) -> Plan[bool]:
        """Take the lock named ``key`` for ``token`` if it is free; atomic.

        The lock frees itself after ``ttl`` seconds, so a dead holder does
        not block others for ever. Locks live beside the entries and are not
        listed by :meth:`keys` or :meth:`count`.
        """
        now = self.now()
        doc = {
            self.id_field: "lock:" + self.id(key),
            OWNER: token,
            self.expires_key: now + dt.timedelta(seconds=ttl),
            NS: "lock:" + self.ns,
        }
        return (yield from self.insert_if_absent(doc, now))

    def release_lock(self, key: str | bytes, token: str) -> Plan[bool]:
        """Release the lock named ``key`` if ``token`` holds it."""
        query = {self.id_field: "lock:" + self.id(key), OWNER: token}
        result = yield Call("delete_one", (query,))
        return bool(result.deleted_count == 1)

    # -- owners -------------------------------------------------------------------

    def set_owner(self, key: str | bytes, owner: Any) -> Plan[bool]:
        """Record ``owner`` (``None``: no owner) on the live session under ``key``.

        For stores whose values the framework encodes (bytes), so the owner
        cannot be read from them: call it at login. Later writes keep it.
        Returns whether a live session was found.
        """
        if self.owner_key is None:
            raise ConfigurationError(
                "set_owner needs the manager option owner_key, which keeps owners on later "
                "writes and makes revocation stick"
            )
        _id = self.id(key)
        query = self.live(_id, self.now())
        query[REVOKED] = {"$ne": True}
        if owner is None:
            update: dict[str, Any] = {"$unset": {USER: "", HANDLE: ""}}
        else:
            update = {"$set": {USER: self.user(owner), HANDLE: self.handle(_id)}}
        result = yield Call("update_one", (query, update))
        return bool(result.matched_count == 1)

    def sessions(
        self, owner: Any, *, keep: str | bytes | None = None
    ) -> Plan[list[dict[str, Any]]]:
        """Return the live sessions of ``owner`` under this prefix, one indexed command.

        Each is a dict: ``handle`` (an opaque name to pass to
        :meth:`revoke_handle`, which reveals nothing of the session id),
        ``created``, ``written`` (last written) and ``expires``, aware UTC
        datetimes.

        :param keep: a session key left out of the list (the current
            session, as for :meth:`revoke`). Default ``None``: none.
        """
        query = self.owner_query(owner)
        query[self.expires_key] = {"$gt": self.now()}
        fields = {HANDLE: True, CREATED: True, WRITTEN: True, self.expires_key: True}
        docs = yield Call("find", (query, fields), many=True)
        mine = None if keep is None else self.handle(self.id(keep))
        return [
            {
                "handle": d.get(HANDLE),
                "created": aware(d.get(CREATED)),
                "written": aware(d.get(WRITTEN)),
                "expires": aware(d.get(self.expires_key)),
            }
            for d in docs
            if mine is None or d.get(HANDLE) != mine
        ]

    def revoke(self, owner: Any, *, keep: str | bytes | None = None) -> Plan[int]:
        """End every session of ``owner`` under this prefix but ``keep``; return how many.

        One indexed command. A revoked session reads as missing and is never
        written again, even by a request that loaded it before (its write
        returns ``False``); it stays as a small marker until it expires.

        :param keep: the key of a session to leave alone (the current one).
        """
        query = self.owner_query(owner)
        query[self.expires_key] = {"$gt": self.now()}  # what sessions() lists
        if keep is not None:
            query[self.id_field] = {"$ne": self.id(keep)}
        result = yield Call("update_many", (query, _REVOKE))
        return int(result.modified_count)

    def revoke_handle(self, owner: Any, handle: str) -> Plan[bool]:
        """End the session of ``owner`` named ``handle`` (from :meth:`sessions`)."""
        query = self.owner_query(owner)
        query[HANDLE] = handle
        query[self.expires_key] = {"$gt": self.now()}
        # A multi-document update needs no shard key on a sharded collection,
        # on every MongoDB version; the handle matches one session at most.
        result = yield Call("update_many", (query, _REVOKE))
        return bool(result.modified_count == 1)

    # -- the whole prefix ---------------------------------------------------------

    def keys(self) -> Plan[list[str]]:
        """Return the live keys of this prefix, without the prefix.

        Keys longer than 1,000 bytes are stored hashed and listed as
        ``"#<sha256>"``. Unavailable with ``hash_ids``.
        """
        if self.hasher is not None:
            raise ConfigurationError("keys cannot be listed when hash_ids is on")
        query = self.prefix_query(self.now())
        docs = yield Call("find", (query, {self.id_field: True}), many=True)
        cut = len(self.prefix)
        return [d[self.id_field][cut:] for d in docs if isinstance(d.get(self.id_field), str)]

    def count(self, *, all_prefixes: bool = False) -> Plan[int]:
        """Return the number of live entries under this prefix.

        :param all_prefixes: count the live entries of every prefix (and any
            live creation locks) instead. Default ``False``.
        """
        now = self.now()
        query = {self.expires_key: {"$gt": now}} if all_prefixes else self.prefix_query(now)
        return int((yield Call("count_documents", (query,))))

    def clear(self, *, nested: bool = False) -> Plan[int]:
        """Delete every entry under this prefix (and only those); keep indexes.

        Returns the number of documents deleted.

        :param nested: also delete the entries of every prefix that begins
            with this one (one range on the indexed ``ns`` field); refused
            with ``hash_ids``. Default ``False``.
        """
        query = {NS: self.nested()} if nested else self.prefix_query(None)
        result = yield Call("delete_many", (query,))
        return int(result.deleted_count)

    # -- the collection -----------------------------------------------------------

    def ping(self) -> Plan[bool]:
        yield Call("command", ("ping",), target="admin")
        return True

    def purge_expired(
        self, *, batch_size: int = 1000, progress: Callable[[int], Any] | None = None
    ) -> Plan[int]:
        """Delete every expired entry in the collection, in bounded batches; return how many.

        Each batch is one ``find`` of at most ``batch_size`` ids, in ``_id``
        order from where the previous batch ended, then one ``delete`` of the
        documents in that ``_id`` range that are still expired: an entry
        refreshed in between is kept, and no command runs long or touches
        more than one batch. For ``cleanup="none"`` deployments, run it from
        a scheduled job.

        :param batch_size: the most documents one batch finds and deletes.
            Default 1000.
        :param progress: called with the running total after each batch.
            Default ``None``.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError("batch_size must be a positive int")
        expired = {self.expires_key: {"$lte": self.now()}}
        deleted = 0
        after: Any = None
        while True:
            query = dict(expired) if after is None else {**expired, "_id": {"$gt": after}}
            options = {"sort": [("_id", 1)], "limit": batch_size}
            docs = yield Call("find", (query, {"_id": True}), options, many=True)
            ids = [doc["_id"] for doc in docs]
            if ids:
                first, last = ids[0], ids[-1]
                # A range is cheap on every server; ids of two BSON types make no range.
                span = {"$gte": first, "$lte": last} if type(first) is type(last) else {"$in": ids}
                result = yield Call("delete_many", ({**expired, "_id": span},))
                deleted += result.deleted_count
                if progress is not None:
                    progress(deleted)
            if len(ids) == batch_size:
                after = ids[-1]
            elif after is None:
                return deleted
            else:
                after = None  # "$gt" compares within one BSON type: look once more from the start

    def stats(
        self, database_name: str, collection_name: str, progress: Callable[[str], Any] | None
    ) -> Plan[dict[str, Any]]:
        """Entry counts, document sizes (bytes of BSON) and index problems. Reads only.

        ``live`` leaves out revoked sessions, which ``revoked`` counts until
        they expire and the TTL index removes them.
        """

        def step(text: str) -> None:
            if progress is not None:
                progress(text)

        now = self.now()
        step("reading documents")
        size = {"$bsonSize": "$$ROOT"}
        group = {"_id": None, "n": {"$sum": 1}, "total": {"$sum": size}, "largest": {"$max": size}}
        sizes = yield Call("aggregate", ([{"$group": group}],), many=True)
        measured = sizes[0] if sizes else {"n": 0, "total": 0, "largest": 0}
        step("counting live entries")
        unexpired = {self.expires_key: {"$gt": now}}
        live = yield Call("count_documents", ({**unexpired, REVOKED: {"$ne": True}},))
        step("counting revoked sessions")
        revoked = yield Call("count_documents", ({**unexpired, REVOKED: True},))
        step("counting expired entries")
        expired = yield Call("count_documents", ({self.expires_key: {"$lte": now}},))
        step("reading indexes")
        existing = yield Call("list_indexes", many=True)
        count, total = int(measured["n"]), int(measured["total"])
        return {
            "database": database_name,
            "collection": collection_name,
            "live": live,
            "revoked": revoked,
            "expired": expired,
            "documents": count,
            "total_size": total,
            "average_size": total // count if count else 0,
            "largest_size": int(measured["largest"] or 0),
            "indexes": sorted(index["name"] for index in existing),
            "index_problems": [d.describe() for d in differences(existing, self.wanted_indexes())],
        }

    def ensure_indexes(self, collection_name: str) -> Plan[list[str]]:
        """Create missing indexes and fix TTL periods; return what was done.

        Raises :class:`~mongo_session_backends.IndexConflict` for an index
        that cannot be fixed in place, naming it.
        """
        existing = yield Call("list_indexes", many=True)
        done = []
        for diff in differences(existing, self.wanted_indexes()):
            if diff.kind == "conflict":
                raise IndexConflict(diff.describe())
            if diff.kind == "missing":
                yield Call("create_index", (diff.field,), diff.options)
                done.append(f"created index on {diff.field}")
            else:
                ttl = diff.options["expireAfterSeconds"]
                index = {"name": diff.name, "expireAfterSeconds": ttl}
                yield Call("command", ("collMod", collection_name), {"index": index}, "database")
                done.append(
                    f"set expireAfterSeconds={ttl} on index {diff.name!r} (was {diff.actual})"
                )
        return done
