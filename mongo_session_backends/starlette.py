"""starsessions adapter: :class:`MongoDBStore`, a ``SessionStore`` on MongoDB.

For Starlette and FastAPI through starsessions' ``SessionMiddleware``::

    app.add_middleware(SessionAutoloadMiddleware)
    app.add_middleware(SessionMiddleware, store=MongoDBStore(uri="mongodb://..."))

starsessions serializes the session; this store keeps the serialized bytes
with the expiry starsessions asks for, and gives every new session an id of
256 random bits from :mod:`secrets` (starsessions' own ids have 128). A
cookie whose id named no live session when the request read it never keeps
that id either, so a client cannot choose its session id.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from contextvars import ContextVar
from typing import Any

import starsessions
from starlette.requests import HTTPConnection
from starsessions import SessionStore

from .adapter import adapter_store, logged_in, owner_in_json
from .async_manager import AsyncMongoManager
from .config import as_seconds, as_str, coerce
from .exceptions import ConfigurationError, OperationError, SerializationError

__all__ = [
    "MongoDBStore",
    "log_out_everywhere",
    "log_out_other_sessions",
    "other_sessions",
    "regenerate_session_id",
]

#: How long the data of a browser-session cookie (``lifetime=0``) is kept: 30 days.
GC_TTL = 30 * 24 * 3600


class _Bytes:
    """Stores starsessions' serialized data as it is: BSON binary."""

    def dumps(self, value: Any) -> bytes:
        if type(value) is not bytes:
            raise SerializationError(
                f"session data must be bytes, as starsessions' serializers make, "
                f"not {type(value).__name__!r}"
            )
        return value

    def loads(self, data: Any) -> bytes:
        if type(data) is not bytes:
            raise ValueError("not session data")
        return data


_BYTES = _Bytes()
#: The ids this request read, and whether each named a live session.
_READ: ContextVar[dict[str, bool] | None] = ContextVar("mongo_sessions_read", default=None)
#: The ids starsessions makes (``secrets.token_hex(16)``): 128 bits, too few.
_THEIRS = re.compile(r"[0-9a-f]{32}")


def new_session_id() -> str:
    """A new session id: 256 random bits from :mod:`secrets`, 43 URL-safe characters."""
    return secrets.token_urlsafe(32)


class MongoDBStore(SessionStore):
    """A starsessions session store in MongoDB.

    Each session is one document under ``key_prefix`` + the session id,
    holding the bytes starsessions serialized; the manager's serializer is
    not used for it. One command per ``read``, ``write`` and ``remove``.

    While MongoDB is unreachable, each operation raises
    :class:`~mongo_session_backends.ServerUnavailable` within the manager's
    timeouts, as starsessions' own Redis store raises its errors: the
    request fails with a 500 response unless the app handles the error.

    :param manager: an :class:`~mongo_session_backends.AsyncMongoManager`
        to share. Default: a new one from ``manager_options``. Giving both
        is refused.
    :param key_prefix: prefix of the stored ids, under the manager's own
        prefix. Default ``"starsessions:"``.
    :param gc_ttl: seconds (or a ``timedelta``) the data of a
        browser-session cookie (``SessionMiddleware(lifetime=0)``, the
        default) is kept after its last write, since the store cannot know
        when the browser closes. Default 30 days, as starsessions' Redis
        store.
    :param manager_options: :class:`~mongo_session_backends.AsyncMongoManager`
        options (``uri``, ``database_name``, ``collection``,
        ``encryption_keys`` ...). ``expires`` is refused: the session's
        expiry comes from ``SessionMiddleware(lifetime=...)`` and ``gc_ttl``.
    :raises ConfigurationError: for a malformed option.
    """

    def __init__(
        self,
        manager: AsyncMongoManager | None = None,
        *,
        key_prefix: str = "starsessions:",
        gc_ttl: int | dt.timedelta = GC_TTL,
        **manager_options: Any,
    ) -> None:
        prefix = coerce("key_prefix", key_prefix, as_str)
        seconds = coerce("gc_ttl", gc_ttl, as_seconds)
        if not seconds:
            raise ConfigurationError("option 'gc_ttl' must be a positive number of seconds")
        for name in ("serializer", "serializer_secret"):
            if name in manager_options:
                raise ConfigurationError(
                    f"{name} does not apply to the starsessions store: starsessions "
                    "serializes the session itself (SessionMiddleware(serializer=...))"
                )
        #: Seconds a browser-session cookie's data is kept.
        self.gc_ttl: float = seconds
        #: The manager's view under ``key_prefix``: every command goes through it.
        self.store = adapter_store(
            "starsessions",
            manager,
            manager_options,
            prefix,
            kind=AsyncMongoManager,
            lifetime="gc_ttl (and SessionMiddleware's lifetime)",
        )

    def __repr__(self) -> str:
        return f"MongoDBStore({self.store!r}, gc_ttl={self.gc_ttl})"

    async def read(self, session_id: str, lifetime: int) -> bytes:
        """The session's data, or ``b""`` if it is missing, expired or unreadable.

        :param lifetime: the session's lifetime; not needed, since the
            entry's expiry is stored with it.
        """
        data: bytes = await self.store.get(session_id, b"", serializer=_BYTES)
        read = _READ.get()
        if read is None:
            read = {}
            _READ.set(read)
        read[session_id] = bool(data)
        return data

    async def write(self, session_id: str, data: bytes, lifetime: int, ttl: int) -> str:
        """Store ``data`` for ``ttl`` seconds; return the session's id.

        The id is ``session_id``, unless this request read it and it named no
        live session (a cookie a client made up, or one whose session is
        gone), or did not read it and it has the shape of starsessions' own
        ids (a new session, whose id starsessions made from 128 bits): then
        a new id of 256 random bits from :mod:`secrets`, written with an
        atomic insert, so a client cannot choose its id. One command either
        way. (A ``BaseHTTPMiddleware`` between starsessions' two middlewares
        runs the read in a context of its own, which hides it here: a
        cookie's id is then kept unless it has starsessions' shape, as
        starsessions does with every store; rotate the id at login with
        :func:`regenerate_session_id`.)

        :param lifetime: the session's total lifetime; ``0`` (a
            browser-session cookie) keeps the data for ``gc_ttl`` instead
            of ``ttl``.
        :param ttl: seconds the data must be kept. With ``lifetime > 0``, a
            ``ttl`` of 0 or less means the session has run out: its entry
            is deleted rather than written (the cookie starsessions sends
            expires at once too).
        :raises SerializationError: if ``data`` is not ``bytes``.
        """
        timeout = self.gc_ttl if lifetime == 0 else ttl
        if timeout <= 0:
            _BYTES.dumps(data)  # the same check as a write
            await self.store.delete(session_id)
            return session_id
        store = self.store
        owner = owner_in_json(store, data)  # for "log out everywhere", with owner_key
        if not isinstance(session_id, str):
            live: bool | None = True  # kept, so the set below refuses it at once
        else:
            live = (_READ.get() or {}).get(session_id)
        if live or (live is None and not _THEIRS.fullmatch(session_id)):
            await store.set(session_id, data, timeout, serializer=_BYTES, owner=owner)
            return session_id
        for _ in range(3):  # a new session, or a cookie naming none: never keep a client's id
            new_id = new_session_id()
            if await store.add(new_id, data, timeout, serializer=_BYTES, owner=owner):
                return new_id
        raise OperationError("could not allocate a unique session id in 3 tries")

    async def remove(self, session_id: str) -> None:
        """Delete the session's entry; nothing happens if there is none."""
        await self.store.delete(session_id)

    async def aclose(self) -> None:
        """Close the manager's client of the running event loop (in the app's lifespan).

        A shared manager is closed too: close it where it was made instead.
        """
        await self.store.aclose()


async def regenerate_session_id(connection: HTTPConnection) -> str:
    """Give the session a new id and delete the entry under the old one.

    Call it (with ``await``) where starsessions' own
    ``regenerate_session_id`` would go, at login for instance: starsessions
    only changes the id, so its old entry would stay readable, under a
    cookie that may be known to someone else, until it expires. The
    session's data is kept and written under the new id with the response.
    Returns the new id.
    """
    handler = starsessions.get_session_handler(connection)
    if handler.session_id:
        await handler.store.remove(handler.session_id)
    handler.session_id = new_session_id()
    return handler.session_id


# -- "log out everywhere" ----------------------------------------------------------------

_OWNER_OPTION = "owner_key on the store (or on the manager it is given)"


def _ours(connection: HTTPConnection) -> tuple[Any, MongoDBStore]:
    """The request's session handler and its store, which must be this module's."""
    handler = starsessions.get_session_handler(connection)
    if not isinstance(handler.store, MongoDBStore):
        raise ConfigurationError("these helpers need SessionMiddleware(store=MongoDBStore(...))")
    return handler, handler.store


async def other_sessions(connection: HTTPConnection) -> list[dict[str, Any]]:
    """The live sessions of the request's user other than its own.

    Each is a dict with ``handle``, ``created``, ``written`` and
    ``expires``. Empty when nobody is logged in (the session has no
    ``owner_key`` entry).
    """
    handler, store = _ours(connection)
    owner = logged_in(store.store, connection.session, _OWNER_OPTION)
    if owner is None:
        return []
    return await store.store.sessions(owner, keep=handler.session_id or None)


async def log_out_other_sessions(connection: HTTPConnection) -> int:
    """End every session of the request's user but its own; return how many.

    For a "log out other devices" button; ``0`` when nobody is logged in.
    """
    handler, store = _ours(connection)
    owner = logged_in(store.store, connection.session, _OWNER_OPTION)
    if owner is None:
        return 0
    return int(await store.store.revoke(owner, keep=handler.session_id))


async def log_out_everywhere(connection: HTTPConnection, user_id: Any) -> int:
    """End every session of ``user_id`` in the request's store; return how many.

    After a password change or a ban; the request's own session too if it
    is one of them.
    """
    _, store = _ours(connection)
    logged_in(store.store, {}, _OWNER_OPTION)  # the same check
    return int(await store.store.revoke(user_id))
