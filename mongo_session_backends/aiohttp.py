"""aiohttp-session adapter: :class:`MongoDBStorage`, an ``AbstractStorage`` on MongoDB.

Install it as any aiohttp-session storage::

    aiohttp_session.setup(app, MongoDBStorage(uri="mongodb://..."))

The cookie carries only the session id, 256 random bits; the data stays in
MongoDB, one document per session. A session that stays empty writes
nothing and sets no cookie.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable
from typing import Any, cast

import aiohttp_session
from aiohttp import web
from aiohttp_session import AbstractStorage, Session, SessionData

from .adapter import adapter_store, logged_in
from .async_manager import AsyncMongoManager
from .config import as_optional_int, as_str, coerce
from .exceptions import ConfigurationError, OperationError, SerializationError

__all__ = ["MongoDBStorage", "log_out_everywhere", "log_out_other_sessions", "other_sessions"]

log = logging.getLogger("mongo_session_backends")

#: What ``secrets.token_urlsafe(32)`` makes; any other cookie is not looked up.
_ID = re.compile(r"[A-Za-z0-9_-]{43}")
#: The request key holding the id of the stored session the request arrived with.
_ARRIVED: Any
try:
    _ARRIVED = web.RequestKey("mongo_session_backends.aiohttp.arrived", object)
except AttributeError:  # aiohttp before 3.14 has only str keys
    _ARRIVED = "mongo_session_backends.aiohttp.arrived"


def _positive(name: str, value: Any) -> int | None:
    seconds: int | None = coerce(name, value, as_optional_int)
    if seconds is not None and seconds < 1:
        raise ConfigurationError(f"{name} must be a positive number of seconds, or None")
    return seconds


class MongoDBStorage(AbstractStorage):
    """An aiohttp-session storage on an :class:`~mongo_session_backends.AsyncMongoManager`.

    Each session is one document under ``key_prefix`` + its id. Its value is
    aiohttp-session's ``{"created": ..., "session": {...}}``, stored as the
    round trip ``decoder(encoder(...))`` gives it, so a handler reads back
    exactly what aiohttp-session's other storages give; with the native
    serializer it is a BSON document that can be queried
    (``{"value.session.user": "alice"}``). One command per load and per save;
    two when :func:`aiohttp_session.new_session` replaces a stored session.

    The stored entry expires ``session.max_age`` seconds after its last
    write (``session.changed()`` asks for one); with ``max_age=None`` (a
    browser-session cookie), after the manager's ``expires`` (default 14
    days). That expiry alone decides, by the manager's clock. A ``max_age``
    set on one session is kept with it. While MongoDB is unreachable, loading and
    saving raise :class:`~mongo_session_backends.ServerUnavailable` within
    the manager's timeouts, as aiohttp-session's own storages raise their
    errors.

    :param manager: an :class:`~mongo_session_backends.AsyncMongoManager`
        to share. Default: a new one from ``manager_options``. Giving both
        is refused.
    :param cookie_name: the cookie's name. Default ``"AIOHTTP_SESSION"``.
    :param domain: the cookie's domain. Default ``None``.
    :param max_age: seconds a session lives after its last change: the
        cookie's ``Max-Age`` and the stored entry's lifetime. Default
        ``None``: a browser-session cookie, whose entry lives for the
        manager's ``expires``.
    :param path: the cookie's path. Default ``"/"``.
    :param secure: send the cookie over HTTPS only. Default ``None`` (no
        attribute).
    :param httponly: hide the cookie from JavaScript. Default ``True``.
    :param samesite: the cookie's ``SameSite``. Default ``None`` (no
        attribute).
    :param key_prefix: prefix of the stored ids, under the manager's own
        prefix. Default ``"aiohttp_session:"``.
    :param encoder: aiohttp-session's encoder. Default ``json.dumps``.
    :param decoder: aiohttp-session's decoder. Default ``json.loads``.
    :param manager_options: :class:`~mongo_session_backends.AsyncMongoManager`
        options (``uri``, ``database_name``, ``expires``, ``encryption_keys``
        ...).
    :raises ConfigurationError: for a malformed option.
    """

    def __init__(
        self,
        manager: AsyncMongoManager | None = None,
        *,
        cookie_name: str = "AIOHTTP_SESSION",
        domain: str | None = None,
        max_age: int | None = None,
        path: str = "/",
        secure: bool | None = None,
        httponly: bool = True,
        samesite: str | None = None,
        key_prefix: str = "aiohttp_session:",
        encoder: Callable[[object], str] = json.dumps,
        decoder: Callable[[str], Any] = json.loads,
        **manager_options: Any,
    ) -> None:
        name = coerce("cookie_name", cookie_name, as_str)
        if not name:
            raise ConfigurationError("cookie_name must not be empty")
        if not callable(encoder) or not callable(decoder):
            raise ConfigurationError("encoder and decoder must be callables")
        super().__init__(
            cookie_name=name,
            domain=domain,
            max_age=_positive("max_age", max_age),
            path=path,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            encoder=encoder,
            decoder=decoder,
        )
        #: The manager's view under ``key_prefix``: every command goes through it.
        self.store = adapter_store(
            "aiohttp-session",
            manager,
            manager_options,
            coerce("key_prefix", key_prefix, as_str),
            kind=AsyncMongoManager,
        )

    def __repr__(self) -> str:
        return f"MongoDBStorage({self.store!r}, cookie_name={self.cookie_name!r})"

    async def new_session(self) -> Session:
        """A new, empty session, marked changed so that saving it deletes the one it replaces."""
        session = await super().new_session()
        session.changed()
        return session

    async def load_session(self, request: web.Request) -> Session:
        """The live session the cookie names, else a new one. At most one command."""
        request[_ARRIVED] = None
        sid = self.load_cookie(request)
        if sid is None or not _ID.fullmatch(sid):
            return Session(None, data=None, new=True, max_age=self.max_age)
        value = await self.store.get(sid)
        if value is None:
            return Session(None, data=None, new=True, max_age=self.max_age)
        request[_ARRIVED] = sid  # a new id replaces it if this one is unreadable
        max_age = value.get("max_age", self.max_age) if isinstance(value, dict) else None
        if not (
            isinstance(value, dict)
            and isinstance(value.get("session"), dict)
            and type(value.get("created")) is int
            and (max_age is None or (type(max_age) is int and max_age > 0))
        ):
            log.warning("unreadable session treated as new")
            return Session(None, data=None, new=True, max_age=self.max_age)
        # The stored entry's expiry decides, by the manager's clock: the session
        # does not judge again from "created", which session.changed() leaves alone.
        session = Session(sid, data=cast(SessionData, value), new=False, max_age=None)
        session.max_age = max_age
        return session

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        """Write, create or delete the session's entry and set its cookie.

        A new session gets a new id; the stored session it replaces (after
        :func:`aiohttp_session.new_session`) is deleted. An emptied session
        (``invalidate()``) is deleted with its cookie.
        """
        max_age = _positive("session.max_age", session.max_age)
        if session.new and session.identity is not None:
            raise ConfigurationError(
                "session ids are made by the storage: set_new_identity() is not supported"
            )
        value = None if session.empty else self._value(session, max_age)  # before any write
        sid = None if session.new else session.identity
        arrived = request.get(_ARRIVED, self._cookie_id(request))
        if arrived is not None and arrived != sid:
            await self.store.delete(arrived)
        if value is None:
            if sid is not None:
                await self.store.delete(sid)
            if self.load_cookie(request) is not None:
                self.save_cookie(response, "")
            return
        key = self.store.owner_key
        owner = None if key is None else session.get(key)  # "log out everywhere"
        if sid is None:
            sid = secrets.token_urlsafe(32)
            if not await self.store.add(sid, value, max_age, owner=owner):
                raise OperationError("a new session id is already taken")
        elif not await self.store.set(sid, value, max_age, only_if_live=True, owner=owner):
            # Deleted by another request since it was loaded: it stays deleted.
            self.save_cookie(response, "")
            return
        self.save_cookie(response, sid, max_age=max_age)

    def _cookie_id(self, request: web.Request) -> str | None:
        """The id the cookie names, when the session was not loaded."""
        sid = self.load_cookie(request)
        return sid if sid is not None and _ID.fullmatch(sid) else None

    def _value(self, session: Session, max_age: int | None) -> dict[str, Any]:
        """What is stored: the session as aiohttp-session's encoder and decoder round it."""
        try:
            value = self._decoder(self._encoder(self._get_session_data(session)))
        except (TypeError, ValueError):
            raise SerializationError(
                "a session value cannot be encoded by the storage's encoder (json.dumps by "
                "default: str, int, float, bool, None, list and dict)"
            ) from None
        if not isinstance(value, dict) or not isinstance(value.get("session"), dict):
            raise SerializationError("the decoder must give back the dict the encoder was given")
        if max_age != self.max_age:
            value["max_age"] = max_age
        return value


# -- "log out everywhere" ----------------------------------------------------------------

_OWNER_OPTION = "owner_key on the storage (or on the manager it is given)"


async def _ours(request: web.Request) -> tuple[Session, MongoDBStorage]:
    """The request's session and its storage, which must be this module's."""
    storage = request.get(aiohttp_session.STORAGE_KEY)
    if not isinstance(storage, MongoDBStorage):
        raise ConfigurationError(
            "these helpers need aiohttp_session.setup(app, MongoDBStorage(...))"
        )
    return await aiohttp_session.get_session(request), storage


async def other_sessions(request: web.Request) -> list[dict[str, Any]]:
    """The live sessions of the request's user other than its own.

    Each is a dict with ``handle``, ``created``, ``written`` and
    ``expires``. Empty when nobody is logged in.
    """
    session, storage = await _ours(request)
    owner = logged_in(storage.store, session, _OWNER_OPTION)
    if owner is None:
        return []
    return await storage.store.sessions(owner, keep=session.identity or None)


async def log_out_other_sessions(request: web.Request) -> int:
    """End every session of the request's user but its own; return how many.

    For a "log out other devices" button; ``0`` when nobody is logged in.
    """
    session, storage = await _ours(request)
    owner = logged_in(storage.store, session, _OWNER_OPTION)
    if owner is None:
        return 0
    return int(await storage.store.revoke(owner, keep=session.identity))


async def log_out_everywhere(request: web.Request, user_id: Any) -> int:
    """End every session of ``user_id`` in the request's storage; return how many.

    After a password change or a ban; the request's own session too if it
    is one of them.
    """
    _, storage = await _ours(request)
    logged_in(storage.store, {}, _OWNER_OPTION)  # the same check
    return int(await storage.store.revoke(user_id))
