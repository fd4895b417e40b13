"""The shared MongoDB collection managers: :class:`MongoManager` and its base.

One manager owns a collection and all traffic to it. Each stored entry is
one document::

    {_id: <key>, value: <serialized value>, expires: <UTC datetime>, ns: <prefix>}

What is sent and how replies are read lives in :mod:`~mongo_session_backends.core`,
free of I/O; this module runs those plans on a ``MongoClient``, and
:mod:`~mongo_session_backends.async_manager` on an ``AsyncMongoClient``.
Reads look the id up and check ``expires`` against the manager's clock, so
an expired entry is never returned, even before MongoDB's TTL monitor
removes it. get, set, has, add, delete and touch are one command on the id
index; ``incr`` is one command with the native serializer and no encryption.
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    Literal,
    NoReturn,
    ParamSpec,
    TypeVar,
    overload,
)

import pymongo
from pymongo import MongoClient, ReadPreference
from pymongo.collection import Collection
from pymongo.read_preferences import _ServerMode

from .codec import FAR_FUTURE, MAX_TIMEOUT, Cleanup, utcnow
from .config import unknown_options
from .connection import (
    DEFAULT_URI,
    Preparation,
    client_options,
    mask_uri,
    new_client,
    open_collection,
    translate,
)
from .core import DRIVER_ERRORS, Call, Core, Plan, Steps
from .exceptions import ConfigurationError, ManagerClosed, MongoSessionError
from .serializers import Serializer

if TYPE_CHECKING:
    from .async_manager import AsyncMongoManager

#: The read preferences a manager may be given, by their MongoDB names.
READ_PREFERENCES: dict[str, _ServerMode] = {
    "primary": ReadPreference.PRIMARY,
    "primaryPreferred": ReadPreference.PRIMARY_PREFERRED,
    "secondary": ReadPreference.SECONDARY,
    "secondaryPreferred": ReadPreference.SECONDARY_PREFERRED,
    "nearest": ReadPreference.NEAREST,
}

__all__ = ["FAR_FUTURE", "MAX_TIMEOUT", "BaseManager", "MongoManager", "mask_uri", "utcnow"]

R = TypeVar("R")
Self = TypeVar("Self", bound="BaseManager")


def _uri_database(uri: str) -> str | None:
    rest = uri.partition("://")[2].partition("?")[0].rpartition("@")[2]
    path = rest.partition("/")[2]
    return path or None


class Connection:
    """The client and state that every view of a manager shares."""

    def __init__(self, client: Any) -> None:
        self.lock = threading.Lock()  # guards the fields; held for no I/O
        self.client = client
        self.pid = os.getpid()
        self.closed = False
        self.prepared = Preparation()
        self.collection: Any = None  # the sync manager's collection on ``client``, once made
        #: The async manager's clients and collections, one per event loop.
        self.loops: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


P = ParamSpec("P")


class operation(Generic[P, R]):
    """A manager method that runs the core's plan of the same name.

    Defined once for both managers: on a :class:`MongoManager` the method
    returns the result, on an
    :class:`~mongo_session_backends.AsyncMongoManager` an awaitable of it.
    The signature and documentation are the plan's.
    """

    def __init__(self, plan: Callable[Concatenate[Core, P], Plan[R]]) -> None:
        self.plan = plan
        self.__doc__ = plan.__doc__
        # What help() shows for a manager's method: the plan's parameters but its first.
        signature = inspect.signature(plan)
        self.signature = signature.replace(
            parameters=list(signature.parameters.values())[1:],
            return_annotation=inspect.Signature.empty,
        )

    @overload
    def __get__(
        self, manager: None, owner: type[Any]
    ) -> Callable[Concatenate[Core, P], Plan[R]]: ...
    @overload
    def __get__(
        self, manager: AsyncMongoManager, owner: type[Any]
    ) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __get__(self, manager: MongoManager, owner: type[Any]) -> Callable[P, R]: ...
    def __get__(self, manager: Any, owner: type[Any]) -> Any:
        plan = self.plan
        if manager is None:
            return plan  # for documentation tools: the plan's signature and text
        run, core = manager._run, manager._core

        def call(*args: P.args, **kwargs: P.kwargs) -> Any:
            return run(plan(core, *args, **kwargs))

        call.__name__ = call.__qualname__ = plan.__name__
        call.__doc__ = self.__doc__
        call.__signature__ = self.signature  # type: ignore[attr-defined]
        return call


class BaseManager:
    """What the sync and async managers share: their options, checked once, and views.

    Not used directly; see :class:`MongoManager` and
    :class:`~mongo_session_backends.AsyncMongoManager`, which take the same
    options.
    """

    #: The pymongo client class the manager runs on.
    client_class: type[Any] = MongoClient

    def __init__(
        self,
        uri: str | None = None,
        *,
        client: Any = None,
        database_name: str | None = None,
        collection: str = "sessions",
        connection_options: Mapping[str, Any] | None = None,
        expires: int | float | dt.timedelta = dt.timedelta(days=14),
        expires_key: str = "expires",
        id_field: str = "_id",
        expire_after_seconds: int = 0,
        cleanup: Cleanup = "ttl",
        on_error: Callable[[BaseException], Any] | None = None,
        serializer: str | Serializer | None = None,
        serializer_secret: str | bytes | None = None,
        encryption_keys: str | bytes | Sequence[str | bytes] | None = None,
        hash_ids: bool = False,
        id_secret: str | bytes | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        prefix: str = "",
        incr_mode: Literal["find_and_modify", "update_and_read"] = "find_and_modify",
        read_preference: str = "primary",
        owner_key: str | None = None,
        **unknown: NoReturn,
    ) -> None:
        if unknown:  # a typo: refused here as by every adapter (type checkers refuse it too)
            raise unknown_options(unknown, OPTIONS, type(self).__name__)
        if isinstance(client, str):
            if uri is not None:
                raise ConfigurationError("give uri or client, not both")
            uri, client = client, None
        if uri is not None and not isinstance(uri, str):
            raise ConfigurationError("uri must be a str")
        if client is not None and not isinstance(client, self.client_class):
            raise ConfigurationError(
                f"client must be a pymongo {self.client_class.__name__} or a URI"
            )
        if not isinstance(collection, str) or not collection:
            raise ConfigurationError("collection must be a non-empty name")
        if database_name is not None and (not isinstance(database_name, str) or not database_name):
            raise ConfigurationError("database_name must be a non-empty name, or None")
        if on_error is not None and not callable(on_error):
            raise ConfigurationError("on_error must be a callable")
        self.uri = uri or DEFAULT_URI
        self.database_name = database_name or _uri_database(self.uri) or "sessions"
        self.collection_name = collection
        self.on_error = on_error
        if read_preference not in READ_PREFERENCES:
            raise ConfigurationError(
                f"read_preference must be one of {', '.join(READ_PREFERENCES)}"
            )
        #: Reads go to the primary unless a pure cache opts in to another mode.
        self.read_preference = READ_PREFERENCES[read_preference]
        self._core = Core(
            expires=expires, expires_key=expires_key, id_field=id_field,
            expire_after_seconds=expire_after_seconds, cleanup=cleanup, serializer=serializer,
            serializer_secret=serializer_secret, encryption_keys=encryption_keys,
            hash_ids=hash_ids, id_secret=id_secret, clock=clock, prefix=prefix,
            incr_mode=incr_mode, owner_key=owner_key,
        )  # fmt: skip
        self._options = client_options(connection_options, self.uri)
        self._own_client = client is None
        if client is None:
            client = new_client(self.uri, self._options, self.client_class)
        open_collection(client, self.database_name, collection)  # checks the names
        self._conn = Connection(client)
        self._prepared = self._conn.prepared

    def with_prefix(self: Self, prefix: str) -> Self:
        """Return a view of this manager for its prefix followed by ``prefix``.

        Prefixes nest: a view of a manager made with ``prefix="app1:"`` for
        ``"cache:"`` stores under ``"app1:cache:"``, so two apps that share a
        collection under their own prefixes never see each other's keys.
        The view shares the connection, indexes and options. Closing either
        closes both.
        """
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._core = self._core.view(prefix)
        return view

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(uri={mask_uri(self.uri)!r}, "
            f"database_name={self.database_name!r}, collection={self.collection_name!r})"
        )

    def _collection_of(self, client: Any) -> Any:
        """The manager's collection on ``client``, with the manager's read preference.

        The client's or URI's own read preference is not used: a session
        must read its own last write, so reads go to the primary by default.
        """
        database = client.get_database(self.database_name)
        return database.get_collection(self.collection_name, read_preference=self.read_preference)

    # The options that decide what is stored, as attributes.

    @property
    def prefix(self) -> str:
        """The key prefix of this view."""
        return self._core.prefix

    @property
    def serializer(self) -> Serializer:
        """The serializer in use."""
        return self._core.serializer

    @property
    def clock(self) -> Callable[[], dt.datetime]:
        """The clock that decides what has expired."""
        return self._core.clock

    @property
    def expires(self) -> float:
        """The default lifetime in seconds; ``0`` means never."""
        return self._core.expires

    @property
    def expires_key(self) -> str:
        return self._core.expires_key

    @property
    def id_field(self) -> str:
        return self._core.id_field

    @property
    def cleanup(self) -> Cleanup:
        return self._core.cleanup

    def handle_of(self, key: str | bytes) -> str:
        """The handle that :meth:`sessions` shows for the session under ``key``."""
        return self._core.handle(self._core.id(key))

    @property
    def hash_ids(self) -> bool:
        """Whether stored ids (and prefixes) are HMACs of the keys."""
        return self._core.hasher is not None

    @property
    def owner_key(self) -> str | None:
        """The session key that holds the user id, or ``None`` (see the class)."""
        return self._core.owner_key

    @property
    def incr_mode(self) -> Literal["find_and_modify", "update_and_read"]:
        """How :meth:`incr` runs (see the class)."""
        return self._core.incr_mode

    @incr_mode.setter
    def incr_mode(self, mode: Literal["find_and_modify", "update_and_read"]) -> None:
        if mode not in ("find_and_modify", "update_and_read"):
            raise ConfigurationError("incr_mode must be 'find_and_modify' or 'update_and_read'")
        self._core.incr_mode = mode

    # The operations: the same plans for both managers.
    get = operation(Core.get)
    get_entry = operation(Core.get_entry)
    get_many = operation(Core.get_many)
    has = operation(Core.has)
    set = operation(Core.set)
    set_many = operation(Core.set_many)
    add = operation(Core.add)
    incr = operation(Core.incr)
    incr_live = operation(Core.incr_live)
    touch = operation(Core.touch)
    delete = operation(Core.delete)
    delete_many = operation(Core.delete_many)
    acquire_lock = operation(Core.acquire_lock)
    release_lock = operation(Core.release_lock)
    keys = operation(Core.keys)
    count = operation(Core.count)
    clear = operation(Core.clear)
    set_owner = operation(Core.set_owner)
    sessions = operation(Core.sessions)
    revoke = operation(Core.revoke)
    revoke_handle = operation(Core.revoke_handle)

    def _preparation(self) -> Plan[None]:
        """The plan that prepares the collection, reporting a failure as ``on_error`` says."""
        try:
            yield from self._core.ensure_indexes(self.collection_name)
        except DRIVER_ERRORS as exc:
            self._prepared.failed(translate(exc), self.on_error)
        except MongoSessionError as exc:
            self._prepared.failed(exc, self.on_error)
        else:
            self._prepared.succeeded()


def send(call: Call, collection: Collection[Any]) -> tuple[Any, BaseException | None]:
    """Perform ``call`` on a sync collection: ``(reply, None)`` or ``(None, error)``."""
    try:
        result = call.bound(collection)(*call.args, **call.kwargs)
        return (list(result) if call.many else result), None
    except DRIVER_ERRORS as exc:
        return None, exc


def run(plan: Plan[R], collection: Collection[Any]) -> R:
    """Run ``plan`` to its end on a sync collection; return its result."""
    steps = Steps(plan)
    for call in steps:
        steps.reply, steps.error = send(call, collection)
    return steps.result


#: The names of the managers' options.
OPTIONS = frozenset(
    name
    for name, parameter in inspect.signature(BaseManager).parameters.items()
    if parameter.kind is not parameter.VAR_KEYWORD
)


class MongoManager(BaseManager):
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
    :param read_preference: where reads go: ``"primary"`` (default), or
        ``"primaryPreferred"``, ``"secondary"``, ``"secondaryPreferred"``,
        ``"nearest"`` for a pure cache that tolerates stale reads. The
        client's and the URI's own read preference are not used, so a
        session always reads its own last write. Sessions should keep the
        default.
    :param owner_key: the session key that holds the logged-in user's id
        (Flask-Login: ``"_user_id"``; Pyramid's ``SessionAuthenticationHelper``:
        ``"auth.userid"``; Django: ``"_auth_user_id"``). When set, every
        write of a session stores its owner in an indexed field in the same
        command (an HMAC of it with ``hash_ids``), so :meth:`sessions` lists
        and :meth:`revoke` ends every session of a user. Default ``None``.
    """

    # -- connection -------------------------------------------------------

    @property
    def client(self) -> MongoClient[dict[str, Any]]:
        """The ``MongoClient`` in use (it connects on its first command)."""
        return self._open().database.client

    def _open(self) -> Collection[dict[str, Any]]:
        """The collection, with a client for this process."""
        conn = self._conn
        collection: Collection[dict[str, Any]] | None = conn.collection
        if collection is not None and not conn.closed and conn.pid == os.getpid():
            return collection
        with conn.lock:
            if conn.closed:
                raise ManagerClosed("this manager is closed; create a new one")
            if conn.pid != os.getpid():
                # After fork the parent's client must not be used or closed.
                if self._own_client:
                    conn.client = new_client(self.uri, self._options, self.client_class)
                conn.pid = os.getpid()
                conn.prepared.reset()
            collection = conn.collection = self._collection_of(conn.client)
            return collection

    def _run(self, plan: Plan[R]) -> R:
        """Run ``plan`` on the collection, preparing it first if needed."""
        collection = self._open()
        if self._prepared.due():
            run(self._preparation(), collection)
        return run(plan, collection)

    def ping(self, timeout: float = 5.0) -> bool:
        """Return ``True`` if MongoDB answers within ``timeout`` seconds.

        Raises :class:`~mongo_session_backends.ServerUnavailable` otherwise.
        """
        with pymongo.timeout(timeout):
            return run(self._core.ping(), self._open())

    def close(self) -> None:
        """Close the client if the manager created it. Idempotent.

        Any later operation raises :class:`~mongo_session_backends.ManagerClosed`.
        """
        conn = self._conn
        with conn.lock:
            if self._own_client and conn.pid == os.getpid() and not conn.closed:
                conn.client.close()
            conn.closed = True
            conn.prepared.reset()

    # -- indexes and maintenance --------------------------------------------

    def ensure_indexes(self) -> list[str]:
        """Create or fix the indexes this manager needs; return what was done."""
        done = run(self._core.ensure_indexes(self.collection_name), self._open())
        self._prepared.succeeded()
        return done

    def purge_expired(
        self, *, batch_size: int = 1000, progress: Callable[[int], Any] | None = None
    ) -> int:
        """See :meth:`~mongo_session_backends.core.Core.purge_expired`."""
        plan = self._core.purge_expired(batch_size=batch_size, progress=progress)
        return run(plan, self._open())  # needs none of the indexes

    def stats(self, *, progress: Callable[[str], Any] | None = None) -> dict[str, Any]:
        """Return entry counts, document sizes and the indexes present.

        Reads only: it creates no index, and reports missing or wrong ones.

        :param progress: called with a short description of each step.
            Default ``None``.
        """
        plan = self._core.stats(self.database_name, self.collection_name, progress)
        return run(plan, self._open())

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())
