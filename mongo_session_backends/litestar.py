"""Litestar adapter: :class:`MongoDBStore`, a Litestar ``NamespacedStore`` on MongoDB.

Register it the way Litestar registers any store, by name::

    app = Litestar(
        route_handlers=[...],
        middleware=[ServerSideSessionConfig().middleware],
        stores={"sessions": MongoDBStore("mongodb://localhost:27017/myapp")},
    )

It serves Litestar's server-side sessions (store ``"sessions"``), the
response cache (``"response_cache"``) and the rate limiter
(``"rate_limit"``), and anything else that asks the app for a store.
"""

from __future__ import annotations

import datetime as dt
import math
from types import TracebackType
from typing import TYPE_CHECKING, Any

from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.stores.base import NamespacedStore

from .adapter import adapter_store, logged_in, owner_in_json
from .async_manager import AsyncMongoManager
from .exceptions import ConfigurationError, SerializationError
from .manager import FAR_FUTURE
from .serializers import NativeSerializer

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from typing_extensions import Self

__all__ = [
    "MongoDBStore",
    "SessionConfig",
    "log_out_everywhere",
    "log_out_other_sessions",
    "other_sessions",
    "rotate_session_id",
]

#: Every Litestar entry's key starts with this, under the manager's own prefix.
PREFIX = "litestar:"
#: Ends a namespace path. Each segment starts with a digit, so no key of a
#: namespace can look like an entry of a namespace nested in it.
END = "/"
#: The character after the digits: "/" (0x2F) and "0"-"9" (0x30-0x39) are
#: contiguous, so a namespace and all those nested in it are exactly the
#: ``ns`` values from ``path + "/"`` up to ``path + ":"``: a range on the
#: ``ns`` index, where a regex would scan on some servers.
AFTER = ":"
#: Litestar's values are bytes: stored as BSON binary, whatever the manager's serializer.
BYTES = NativeSerializer()
#: Litestar counts expiry in whole seconds: a renewal that moves it less is skipped.
RESOLUTION = dt.timedelta(seconds=1)


class _Shared:
    """The manager a store and the namespaces made from it share.

    A manager the store made closes its client at the end of the app's
    lifespan, and connects again when next used (the next lifespan, such as
    the next ``with TestClient(app)``). A manager given to the store is never
    closed here.
    """

    def __init__(self, manager: AsyncMongoManager | None, options: dict[str, Any]) -> None:
        self.made = manager is None
        self.manager = adapter_store(
            "Litestar", manager, options, PREFIX, kind=AsyncMongoManager, lifetime="expires_in"
        )

    async def close(self) -> None:
        if self.made:
            await self.manager.aclose()


class MongoDBStore(NamespacedStore):
    """A Litestar store in MongoDB, on an :class:`~mongo_session_backends.AsyncMongoManager`.

    :param manager: an :class:`~mongo_session_backends.AsyncMongoManager` to
        share; its prefix is kept and the store's entries nest under it. It
        is never closed by the store. A string is taken as the ``uri``
        option. Default: a manager made from ``manager_options``, closed at
        the end of the app's lifespan.
    :param namespace: the namespace of this store's keys. Default
        ``"LITESTAR"``, as Litestar's ``RedisStore``. ``None`` puts the
        keys at the root of every Litestar namespace in the collection, so
        :meth:`delete_all` then deletes them all.
    :param manager_options: keyword arguments for
        :class:`~mongo_session_backends.AsyncMongoManager` (``uri``,
        ``database_name``, ``collection``, ``connection_options``,
        ``encryption_keys`` ...). Refused together with ``manager``.
        ``expires`` does not apply (each ``set`` gives its own
        ``expires_in``), nor does ``serializer``: Litestar's values are bytes
        and are stored as BSON binary.

    Keys are ``str``. Values are ``bytes``; a ``str`` value is stored as
    its UTF-8 encoding, as Litestar's own stores do. Expiry is judged by
    the manager's clock. :meth:`get`, :meth:`set`, :meth:`delete`,
    :meth:`exists` and :meth:`expires_in` are one command each; ``get`` with
    ``renew_for`` is two when it extends the expiry (a read, then an update
    of the expiry alone).

    While MongoDB is unreachable every operation raises
    :class:`~mongo_session_backends.ServerUnavailable` after the client's
    server selection timeout, as Litestar's Redis store raises Redis's
    errors; in a request that is a 500 response.
    """

    __slots__ = ("_shared", "_suffix", "_view", "path")

    def __init__(
        self,
        manager: AsyncMongoManager | str | None = None,
        *,
        namespace: str | None = "LITESTAR",
        **manager_options: Any,
    ) -> None:
        for name in ("serializer", "serializer_secret"):
            if name in manager_options:
                raise ConfigurationError(
                    f"{name} does not apply to the Litestar adapter: "
                    "Litestar's values are bytes, stored as BSON binary"
                )
        if isinstance(manager, str):
            if "uri" in manager_options:
                raise ConfigurationError("give the URI once: as the first argument or as uri")
            manager, manager_options["uri"] = None, manager
        self._shared = _Shared(manager, manager_options)
        self._set_path(() if namespace is None else (_checked(namespace),))

    def _set_path(self, path: tuple[str, ...]) -> None:
        #: The namespaces from the outermost to this store's own.
        self.path = path
        self.namespace: str | None = "_".join(path) or None  # as RedisStore names it
        # Each segment carries its length, so "a" then "b" differs from "a_b" or "ab".
        self._suffix = "".join(f"{len(name)}:{name}" for name in path) + END
        self._view = self._shared.manager.with_prefix(self._suffix)

    @property
    def manager(self) -> AsyncMongoManager:
        """The manager's view for this namespace: every command goes through it."""
        return self._view

    def __repr__(self) -> str:
        return f"MongoDBStore(namespace={self.namespace!r}, manager={self._shared.manager!r})"

    def with_namespace(self, namespace: str) -> Self:
        """Return a store for ``namespace`` nested in this one, on the same manager.

        :meth:`delete_all` on this store deletes the nested store's entries
        too; every other operation is isolated between namespaces.
        """
        child = object.__new__(type(self))
        child._shared = self._shared
        child._set_path((*self.path, _checked(namespace)))
        return child

    async def set(
        self, key: str, value: str | bytes, expires_in: int | dt.timedelta | None = None
    ) -> None:
        """Store ``value`` under ``key``.

        :param expires_in: seconds or a ``timedelta`` until the entry
            expires. Default ``None``: never; ``0`` means never too, as in
            Litestar's ``MemoryStore``.
        """
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif isinstance(value, (bytearray, memoryview)):
            value = bytes(value)
        elif not isinstance(value, bytes):
            raise SerializationError(
                f"Litestar store values are bytes or str, not {type(value).__name__}"
            )
        manager = self.manager
        owner = owner_in_json(manager, value)  # for "log out everywhere", with owner_key
        await manager.set(key, value, expires_in or 0, serializer=BYTES, owner=owner)

    async def get(self, key: str, renew_for: int | dt.timedelta | None = None) -> bytes | None:
        """Return the live value under ``key``, else ``None``.

        :param renew_for: seconds or a ``timedelta``: give an entry that was
            set with an expiry a new one, ``renew_for`` from now. An entry
            without expiry keeps it. Default ``None``: no renewal. A renewal
            that would move the expiry by less than a second is skipped.
        """
        manager = self.manager
        entry = await manager.get_entry(key, serializer=BYTES)
        if entry is None:
            return None
        value, expiry = entry
        if renew_for and expiry != FAR_FUTURE:
            if not isinstance(renew_for, dt.timedelta):
                renew_for = dt.timedelta(seconds=renew_for)
            if abs(manager.clock() + renew_for - expiry) >= RESOLUTION:
                await manager.touch(key, renew_for)
        return value if isinstance(value, bytes) else None

    async def delete(self, key: str) -> None:
        """Delete ``key``; nothing happens if it is missing."""
        await self.manager.delete(key)

    async def delete_all(self) -> None:
        """Delete every entry of this namespace and of the namespaces nested in it.

        One command. Other namespaces, and other adapters' entries in the
        same collection, are left alone. Unavailable with ``hash_ids``,
        which hides the namespaces.
        """
        if self.manager.hash_ids:
            raise ConfigurationError(
                "delete_all cannot find the nested namespaces when hash_ids is on"
            )
        # The path without its end mark begins exactly this namespace and those inside it.
        await self._shared.manager.with_prefix(self._suffix[: -len(END)]).clear(nested=True)

    async def exists(self, key: str) -> bool:
        """Return whether a live entry is stored under ``key``."""
        return await self.manager.has(key, serializer=BYTES)

    async def expires_in(self, key: str) -> int | None:
        """Return the seconds until ``key`` expires, rounded to whole seconds as Redis's ``TTL``.

        ``None`` if it is missing or expired, ``-1`` if it never expires (as
        every built-in Litestar store answers).
        """
        manager = self.manager
        entry = await manager.get_entry(key, serializer=BYTES)
        if entry is None:
            return None
        expiry = entry[1]
        if expiry == FAR_FUTURE:
            return -1
        return math.floor((expiry - manager.clock()).total_seconds() + 0.5)

    async def __aenter__(self) -> None:
        """Start of the app's lifespan: nothing to do, the manager connects on first use."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """End of the app's lifespan: close the manager if this store made it."""
        await self._shared.close()


def _checked(namespace: Any) -> str:
    if not isinstance(namespace, str):
        raise ConfigurationError(f"a namespace must be a str, not {type(namespace).__name__}")
    return namespace


# -- "log out everywhere" ----------------------------------------------------------------

_OWNER_OPTION = "owner_key on the store (or on the manager it is given)"


def _ours(connection: ASGIConnection[Any, Any, Any, Any], store: str) -> MongoDBStore:
    """The app's session store named ``store``, which must be this module's."""
    found = connection.app.stores.get(store)
    if not isinstance(found, MongoDBStore):
        raise ConfigurationError(f"the app's store {store!r} is not a MongoDBStore")
    return found


async def other_sessions(
    connection: ASGIConnection[Any, Any, Any, Any], store: str = "sessions", key: str = "session"
) -> list[dict[str, Any]]:
    """The live sessions of the request's user other than its own.

    :param store: the name of the session store, ``ServerSideSessionConfig``'s
        ``store``. Default ``"sessions"``, as Litestar's.
    :param key: the session cookie's name, ``ServerSideSessionConfig``'s
        ``key``. Default ``"session"``, as Litestar's.

    Each is a dict with ``handle``, ``created``, ``written`` and
    ``expires``. Empty when nobody is logged in.
    """
    manager = _ours(connection, store).manager
    owner = logged_in(manager, connection.session, _OWNER_OPTION)
    if owner is None:
        return []
    return await manager.sessions(owner, keep=connection.cookies.get(key) or None)


async def log_out_other_sessions(
    connection: ASGIConnection[Any, Any, Any, Any], store: str = "sessions", key: str = "session"
) -> int:
    """End every session of the request's user but its own; return how many.

    For a "log out other devices" button; ``0`` when nobody is logged in.
    ``store`` and ``key`` are as for :func:`other_sessions`.
    """
    manager = _ours(connection, store).manager
    owner = logged_in(manager, connection.session, _OWNER_OPTION)
    if owner is None:
        return 0
    return int(await manager.revoke(owner, keep=connection.cookies.get(key)))


async def log_out_everywhere(
    connection: ASGIConnection[Any, Any, Any, Any], user_id: Any, store: str = "sessions"
) -> int:
    """End every session of ``user_id`` in the app's session store; return how many.

    After a password change or a ban; the request's own session too if it
    is one of them.
    """
    manager = _ours(connection, store).manager
    logged_in(manager, {}, _OWNER_OPTION)  # the same check
    return int(await manager.revoke(user_id))


# -- session ids that never come from a client --------------------------------------------

#: Keys of the request's scope state: the id to use instead of the cookie's, and the backend.
_FRESH, _BACKEND = "mongo_session_backends.fresh_id", "mongo_session_backends.backend"


def _state(connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
    state: dict[str, Any] = connection.scope.setdefault("state", {})
    return state


class _Backend(ServerSideSessionBackend):
    """Litestar's server-side backend, but a cookie naming no session gets a new id."""

    async def load_from_connection(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> dict[str, Any]:
        state = _state(connection)
        state[_BACKEND] = self
        session_id = connection.cookies.get(self.config.key)
        if session_id and session_id != "null":
            store = self.config.get_store_from_app(connection.scope["app"])
            data = await self.get(session_id, store=store)
            if data is not None:
                return self.deserialize_data(data)
            state[_FRESH] = self.generate_session_id()  # gone, revoked or made up: not kept
        return {}

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        fresh = _state(connection).get(_FRESH)
        return str(fresh) if fresh is not None else super().get_session_id(connection)


class SessionConfig(ServerSideSessionConfig):
    """Litestar's ``ServerSideSessionConfig``, whose session ids never come from a client.

    The same options and use (``middleware=[SessionConfig().middleware]``).
    A cookie that names no stored session (made up, expired, deleted or
    revoked) gets a new id of ``session_id_bytes`` random bytes instead of
    being kept, and :func:`rotate_session_id` gives a session a new id at
    login. So a session id fixed before a login is worth nothing after it,
    and a browser whose session was revoked never writes under the revoked
    id again (see "log out everywhere").
    """

    _backend_class = _Backend


async def rotate_session_id(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Give the session a new id and delete the entry under the old one; keep its data.

    Call it at login, in a request served by :class:`SessionConfig`'s
    middleware; the response sets the new id's cookie.

    :raises ConfigurationError: if the request's session middleware is not
        :class:`SessionConfig`'s.
    """
    state = _state(connection)
    backend = state.get(_BACKEND)
    if not isinstance(backend, _Backend):
        raise ConfigurationError(
            "rotate_session_id needs middleware=[SessionConfig().middleware] from this module"
        )
    old = connection.cookies.get(backend.config.key)
    state[_FRESH] = backend.generate_session_id()
    if old and old != "null":
        store = backend.config.get_store_from_app(connection.scope["app"])
        await backend.delete(old, store=store)
