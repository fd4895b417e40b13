"""Django session engine: ``SESSION_ENGINE = "mongo_session_backends.django.session"``.

Configured by the ``MONGO_SESSIONS`` setting, written like a ``CACHES``
entry::

    MONGO_SESSIONS = {
        "LOCATION": "mongodb://localhost:27017/myapp",
        "OPTIONS": {"collection": "django_sessions"},
    }

Each session is one document whose value is the session dict itself, stored
as BSON by the manager's serializer (not a signed blob), under the id
``django-session:<session key>``. Its expiry is Django's own
(``SESSION_COOKIE_AGE``, or the session's ``set_expiry()``); reads check it,
and the TTL index removes expired sessions, so ``clearsessions`` has nothing
to do unless ``cleanup`` is ``"none"``.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError

from ..exceptions import ConfigurationError, OperationError
from . import Stores, stores

__all__ = [
    "PREFIX",
    "SETTING",
    "SessionStore",
    "alog_out_everywhere",
    "alog_out_other_sessions",
    "log_out_everywhere",
    "log_out_other_sessions",
    "new_session_key",
    "other_sessions",
    "session_stores",
]

#: The setting that configures the engine.
SETTING = "MONGO_SESSIONS"
#: Prepended to each session key, under the manager's own ``prefix``.
PREFIX = "django-session:"
_CREATE_TRIES = 10


def session_stores() -> Stores:
    """The engine's stores, from the ``MONGO_SESSIONS`` setting (made once per process).

    :raises ConfigurationError: for a malformed setting; the message names
        the option, never its value.
    """
    config = getattr(settings, SETTING, None) or {}
    if not isinstance(config, dict):
        raise ConfigurationError(f"{SETTING} must be a dict with LOCATION and OPTIONS")
    unknown = sorted(set(config) - {"LOCATION", "OPTIONS"})
    if unknown:
        raise ConfigurationError(
            f"unknown key {', '.join(unknown)} in {SETTING}: it takes LOCATION and OPTIONS"
        )
    return stores(
        "Django session engine",
        config.get("LOCATION"),
        config.get("OPTIONS"),
        PREFIX,
        lifetime="SESSION_COOKIE_AGE",
    )


def _timeout(age: int) -> int:
    """The store's timeout for Django's expiry age; an age of 0 or less has already passed."""
    return age if age > 0 else -1


def new_session_key() -> str:
    """A new session key: 256 random bits, 43 URL-safe characters."""
    return secrets.token_urlsafe(32)


class SessionStore(SessionBase):  # type: ignore[misc]
    """A Django session stored in MongoDB; see the module.

    The sync methods run on the shared
    :class:`~mongo_session_backends.MongoManager`, the ``a*`` methods on
    the shared :class:`~mongo_session_backends.AsyncMongoManager`. Loading
    and saving are one command each: ``save()`` writes only over a live
    session (raising Django's ``UpdateError`` if it was deleted meanwhile)
    and ``create()`` inserts only under a free key (a taken key raises
    ``CreateError`` inside, and a new key is drawn).

    :param session_key: the key from the session cookie. Default ``None``:
        a new session.
    """

    _session_key: str | None  # Django's validating property

    def __init__(self, session_key: str | None = None) -> None:
        self._stores = session_stores()
        super().__init__(session_key)

    # -- keys: 256 bits, and no lookup (create() inserts only under a free key)

    def _get_new_session_key(self) -> str:
        return new_session_key()

    async def _aget_new_session_key(self) -> str:
        return new_session_key()

    def _loaded(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            return data
        self._session_key = None  # missing, expired or unreadable: a new session
        return {}

    # -- sync -----------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        if self.session_key is None:
            return {}
        return self._loaded(self._stores.sync.get(self.session_key))

    def exists(self, session_key: str | None) -> bool:
        return session_key is not None and self._stores.sync.has(session_key)

    def create(self) -> None:
        for _ in range(_CREATE_TRIES):
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise OperationError("no free session key was found; the key source is broken")

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        timeout = _timeout(self.get_expiry_age())
        if must_create:
            if not self._stores.sync.add(self.session_key, data, timeout):
                raise CreateError
        elif not self._stores.sync.set(self.session_key, data, timeout, only_if_live=True):
            raise UpdateError

    def delete(self, session_key: str | None = None) -> None:
        key = self.session_key if session_key is None else session_key
        if key:
            self._stores.sync.delete(key)

    @classmethod
    def clear_expired(cls) -> None:
        """Delete expired sessions if no index does: only with ``cleanup="none"``."""
        store = session_stores().sync
        if store.cleanup == "none":
            store.purge_expired()

    # -- async ----------------------------------------------------------------

    async def aload(self) -> dict[str, Any]:
        if self.session_key is None:
            return {}
        return self._loaded(await self._stores.async_.get(self.session_key))

    async def aexists(self, session_key: str | None) -> bool:
        return session_key is not None and await self._stores.async_.has(session_key)

    async def acreate(self) -> None:
        for _ in range(_CREATE_TRIES):
            self._session_key = await self._aget_new_session_key()
            try:
                await self.asave(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise OperationError("no free session key was found; the key source is broken")

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return await self.acreate()
        data = await self._aget_session(no_load=must_create)
        timeout = _timeout(await self.aget_expiry_age())
        store = self._stores.async_
        if must_create:
            if not await store.add(self.session_key, data, timeout):
                raise CreateError
        elif not await store.set(self.session_key, data, timeout, only_if_live=True):
            raise UpdateError

    async def adelete(self, session_key: str | None = None) -> None:
        key = self.session_key if session_key is None else session_key
        if key:
            await self._stores.async_.delete(key)

    @classmethod
    async def aclear_expired(cls) -> None:
        """Delete expired sessions if no index does: only with ``cleanup="none"``."""
        store = session_stores().async_
        if store.cleanup == "none":
            await store.purge_expired()


# -- "log out everywhere" ----------------------------------------------------------------


def _owned() -> Stores:
    """The engine's stores, checked to record owners."""
    found = session_stores()
    if found.sync.owner_key is None:
        raise ConfigurationError(
            f"listing or ending a user's sessions needs the option owner_key='_auth_user_id' "
            f"in {SETTING}"
        )
    return found


def _owner(request: Any, store: Any) -> Any:
    """The logged-in user's id in ``request``'s session, or ``None``."""
    return request.session.get(store.owner_key)


def other_sessions(request: Any) -> list[dict[str, Any]]:
    """The live sessions of ``request``'s user other than its own.

    Each is a dict with ``handle``, ``created``, ``written`` and
    ``expires``; pass a handle to the manager's ``revoke_handle`` to end
    that one session. Empty when nobody is logged in.
    """
    store = _owned().sync
    owner = _owner(request, store)
    if owner is None:
        return []
    return store.sessions(owner, keep=request.session.session_key or None)


def log_out_other_sessions(request: Any) -> int:
    """End every session of ``request``'s user but its own; return how many.

    For a "log out other devices" button; ``0`` when nobody is logged in.
    """
    store = _owned().sync
    owner = _owner(request, store)
    if owner is None:
        return 0
    return int(store.revoke(owner, keep=request.session.session_key))


def log_out_everywhere(user_id: Any) -> int:
    """End every session of ``user_id`` (its ``pk``); return how many.

    After a password change or a ban. Django keeps the user id as text, so
    ``user.pk`` and ``str(user.pk)`` name the same sessions.
    """
    return int(_owned().sync.revoke(user_id))


async def alog_out_other_sessions(request: Any) -> int:
    """:func:`log_out_other_sessions` for async views, on the async manager."""
    store = _owned().async_
    owner = await request.session.aget(store.owner_key)
    if owner is None:
        return 0
    return int(await store.revoke(owner, keep=request.session.session_key))


async def alog_out_everywhere(user_id: Any) -> int:
    """:func:`log_out_everywhere` for async code, on the async manager."""
    return int(await _owned().async_.revoke(user_id))
