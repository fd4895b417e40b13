"""Pyramid adapter: a server-side session factory on MongoDB.

Use it directly::

    config.set_session_factory(MongoSessionFactory("a long secret", uri="mongodb://..."))

or from ``.ini`` settings with ``config.include("mongo_session_backends.pyramid")``
and ``mongo_sessions.*`` settings.

The cookie carries only the session id, signed with the secret; the data
stays in MongoDB. A session that stays empty writes no document and sets no
cookie.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from pyramid.interfaces import ISession, ISessionFactory
from webob.cookies import CookieProfile, SignedSerializer
from zope.interface import implementer

from .adapter import OutagePolicy, adapter_store
from .config import (
    as_bool,
    as_optional_int,
    as_seconds,
    as_secret,
    as_str,
    coerce,
    manager_options,
)
from .exceptions import ConfigurationError, OperationError, SerializationError
from .manager import MongoManager

__all__ = ["MongoSession", "MongoSessionFactory", "includeme", "session_factory_from_settings"]

log = logging.getLogger("mongo_session_backends")
_UNREAD: Any = object()

SETTINGS_PREFIX = "mongo_sessions."
_SAMESITE = {"strict": "Strict", "lax": "Lax", "none": "None"}


def _optional_str(value: Any) -> str | None:
    return None if value is None else as_str(value) or None


def _samesite(value: Any) -> str | None:
    if value is None:
        return None
    text = as_str(value).lower()
    if text not in _SAMESITE:
        raise ValueError("expected Strict, Lax or None")
    return _SAMESITE[text]


#: The factory's own options (keyword names) with their coercions; the same
#: for a Python keyword and an ``.ini`` string.
FACTORY_OPTIONS: dict[str, Callable[[Any], Any]] = {
    "timeout": as_seconds,
    "reissue_time": as_seconds,
    "cookie_name": as_str,
    "max_age": as_optional_int,
    "path": as_str,
    "domain": _optional_str,
    "secure": as_bool,
    "httponly": as_bool,
    "samesite": _samesite,
    "set_on_exception": as_bool,
    "key_prefix": as_str,
    "empty_on_outage": as_bool,
}
_COOKIE_OPTIONS = ("max_age", "path", "domain", "secure", "httponly", "samesite")
_RENAMED = {f"cookie_{name}": name for name in _COOKIE_OPTIONS}
#: The ``mongo_sessions.*`` settings of the adapter itself (cookie ones prefixed ``cookie_``).
ADAPTER_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "secret": as_secret,
    **{f"cookie_{k}" if k in _COOKIE_OPTIONS else k: v for k, v in FACTORY_OPTIONS.items()},
}


class _IdSerializer:
    """The cookie's payload is the bare session id."""

    def dumps(self, value: str) -> bytes:
        return value.encode("ascii")

    def loads(self, data: bytes) -> str:
        text = data.decode("ascii")
        if not 40 <= len(text) <= 64:
            raise ValueError("not a session id")
        return text


def _mutating(method: Callable[..., Any]) -> Callable[..., Any]:
    def changed(self: MongoSession, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        self.changed()
        return result

    changed.__name__ = method.__name__
    changed.__doc__ = method.__doc__
    return changed


@implementer(ISession)
class MongoSession(dict[Any, Any]):
    """A Pyramid session whose data lives in MongoDB.

    Made by :class:`MongoSessionFactory`; not constructed directly.
    """

    def __init__(self, factory: MongoSessionFactory, request: Any) -> None:
        super().__init__()
        self._factory = factory
        self.request = request
        self._dirty = False
        self._invalidated = False
        self._had_cookie = False
        self._unread = False  # MongoDB was down when the session was read
        self._snapshot: Any = None
        self._renewed = 0.0
        self.id: str | None = None
        self.new = True
        self.created = self._factory.now()
        self._load()
        request.add_response_callback(self._save)

    def _load(self) -> None:
        factory = self._factory
        cookie = factory.cookie(self.request)
        sid = cookie.get_value()
        self._had_cookie = self.request.cookies.get(factory.cookie_name) is not None
        if sid is None:
            return
        entry = factory.policy.run(_UNREAD, factory.store.get_entry, sid)
        if entry is _UNREAD:
            self._unread = True
            return
        if entry is None:
            return
        state, expires = entry
        try:
            data, created = state["d"], float(state["c"])
            dict.update(self, data)
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("unreadable session treated as empty")
            dict.clear(self)
            return
        self.id, self.created, self.new = sid, created, False
        self._snapshot = factory.serializer.dumps(dict(self))
        timeout = factory.timeout
        self._renewed = expires.timestamp() - timeout if timeout else self._factory.now()

    # -- ISession ----------------------------------------------------------

    def changed(self) -> None:
        """Mark the session as changed (for mutations of nested values)."""
        self._dirty = True

    def _owner(self) -> Any:
        """The logged-in user's id, under the manager's ``owner_key`` (``None``: nobody)."""
        key = self._factory.store.owner_key
        return None if key is None else self.get(key)

    def rotate(self) -> None:
        """Give the session a new id and keep its data: call it at login.

        The data is written under the new id when the response is sent, and
        the old id is deleted now, so a session id fixed before the login is
        worth nothing after it. Pyramid itself has no such call.
        """
        if self.id is not None:
            self._factory.store.delete(self.id)
        self.id = None
        self.new = True
        self._snapshot = None
        self._dirty = True

    def other_sessions(self) -> list[dict[str, Any]]:
        """The logged-in user's other live sessions (see ``MongoManager.sessions``).

        Needs the manager option ``owner_key``; empty when nobody is logged in.
        """
        owner = self._owner()
        if owner is None:
            return []
        return self._factory.store.sessions(owner, keep=self.id)

    def log_out_other_sessions(self) -> int:
        """End every other session of the logged-in user; keep this one. Return how many.

        Needs the manager option ``owner_key``. For "log out everywhere" after
        a password change, call it, then :meth:`rotate`.
        """
        owner = self._owner()
        if owner is None:
            return 0
        return self._factory.store.revoke(owner, keep=self.id)

    def invalidate(self) -> None:
        """Delete the stored session now and start an empty one with a new id."""
        if self.id is not None:
            self._factory.store.delete(self.id)
        dict.clear(self)
        self.id = None
        self.new = True
        self.created = self._factory.now()
        self._invalidated = True
        self._dirty = False
        self._snapshot = None

    def _check(self, key: Any, value: Any) -> None:
        try:
            self._factory.serializer.dumps(value)
        except SerializationError:
            raise SerializationError(
                f"the session value for key {key!r} cannot be stored by the session serializer"
            ) from None

    def __setitem__(self, key: Any, value: Any) -> None:
        self._check(key, value)
        dict.__setitem__(self, key, value)
        self.changed()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    __delitem__ = _mutating(dict.__delitem__)
    clear = _mutating(dict.clear)
    pop = _mutating(dict.pop)
    popitem = _mutating(dict.popitem)

    def flash(self, msg: Any, queue: str = "", allow_duplicate: bool = True) -> None:
        """Add ``msg`` to the flash queue ``queue``."""
        storage = self.setdefault("_f_" + queue, [])
        if allow_duplicate or msg not in storage:
            self._check("_f_" + queue, msg)
            storage.append(msg)
            self.changed()

    def pop_flash(self, queue: str = "") -> list[Any]:
        """Remove and return the messages of ``queue``."""
        return list(self.pop("_f_" + queue, []))

    def peek_flash(self, queue: str = "") -> list[Any]:
        """Return the messages of ``queue`` without removing them."""
        return list(self.get("_f_" + queue, []))

    def new_csrf_token(self) -> str:
        """Store and return a new CSRF token."""
        token = secrets.token_hex(32)
        self["_csrft_"] = token
        return token

    def get_csrf_token(self) -> str:
        """Return the CSRF token, creating one if there is none."""
        token = self.get("_csrft_")
        return str(token) if token is not None else self.new_csrf_token()

    # -- saving --------------------------------------------------------------

    def _save(self, request: Any, response: Any) -> None:
        factory = self._factory
        if not factory.set_on_exception and getattr(request, "exception", None) is not None:
            return
        if self._unread:
            # Read during an outage: writing now could replace the user's real
            # session, and deleting the cookie would log them out.
            log.warning("session write skipped: it could not be read")
            return
        factory.policy.run(None, self._write, response)

    def _write(self, response: Any) -> None:
        factory = self._factory
        if self._had_cookie:
            _vary_cookie(response)
        if not self:
            if self.id is not None:
                factory.store.delete(self.id)
            if self._had_cookie:
                factory.cookie(self.request).set_cookies(response, "", max_age=0)
                _vary_cookie(response)
            return
        state = {"c": self.created, "d": dict(self)}
        if self.id is None:
            self._create(state, response)
            return
        if self._dirty or factory.serializer.dumps(state["d"]) != self._snapshot:
            live = factory.store.set(
                self.id, state, factory.lifetime, only_if_live=True, owner=self._owner()
            )
            if not live:
                # Destroyed by another request since it was loaded: stay destroyed.
                factory.cookie(self.request).set_cookies(response, "", max_age=0)
                return
        elif self._needs_refresh():
            factory.store.touch(self.id, factory.lifetime)
        else:
            return
        if factory.max_age is not None:
            self._set_cookie(response)

    def _needs_refresh(self) -> bool:
        factory = self._factory
        if factory.timeout is None or factory.reissue_time is None:
            return False
        return self._factory.now() - self._renewed >= factory.reissue_time

    def _create(self, state: dict[str, Any], response: Any) -> None:
        store = self._factory.store
        for _ in range(3):
            sid = secrets.token_urlsafe(32)
            if store.add(sid, state, self._factory.lifetime, owner=self._owner()):
                self.id, self.new = sid, False
                self._set_cookie(response)
                return
        raise OperationError("could not allocate a unique session id in 3 tries")

    def _set_cookie(self, response: Any) -> None:
        assert self.id is not None
        self._factory.cookie(self.request).set_cookies(response, self.id)
        _vary_cookie(response)


def _vary_cookie(response: Any) -> None:
    vary = tuple(response.vary or ())
    if "Cookie" not in vary:
        response.vary = (*vary, "Cookie")


@implementer(ISessionFactory)
class MongoSessionFactory:
    """A Pyramid session factory that stores sessions in MongoDB.

    Every option may also be given as a string, as in ``.ini`` settings
    (``timeout="1200"``, ``secure="true"``, ``max_age="none"``); a malformed
    value raises :class:`~mongo_session_backends.ConfigurationError` here,
    before any session is written.

    :param secret: signs the session id in the cookie; at least 16
        characters. Required.
    :param timeout: seconds of inactivity after which a session expires on
        the server. Default 1200. ``None`` means never; ``0`` is refused
        (Pyramid's cookie sessions would expire at once, other stacks never).
    :param reissue_time: the least number of seconds between two refreshes
        of an unchanged session's expiry (one ``touch`` command). Default
        120. ``0`` refreshes on every request; ``None`` never refreshes, so
        unchanged sessions expire ``timeout`` seconds after their last write.
    :param cookie_name: the cookie's name. Default ``"session"``.
    :param max_age: the cookie's ``Max-Age`` in seconds, renewed whenever the
        session is written or refreshed. Default ``None`` (a browser-session
        cookie).
    :param path: the cookie's path. Default ``"/"``.
    :param domain: the cookie's domain. Default ``None``.
    :param secure: send the cookie over HTTPS only. Default ``False``.
    :param httponly: hide the cookie from JavaScript. Default ``True``.
    :param samesite: the cookie's ``SameSite``: ``"Strict"``, ``"Lax"``,
        ``"None"``, or ``None`` for no attribute. Default ``"Lax"``.
    :param set_on_exception: save the session when the view raised.
        Default ``True``.
    :param key_prefix: prefix of the stored ids, under the manager's own
        prefix. Default ``"session:"``.
    :param empty_on_outage: when MongoDB is unreachable, a session that
        cannot be read is empty for this request, its writes are dropped
        (with a warning) and its cookie is left alone, so the user is still
        logged in once MongoDB is back; without it,
        :class:`~mongo_session_backends.ServerUnavailable` is raised. A
        logout (``invalidate()``) always raises during an outage, so it is
        never silently lost. Default ``False``.
    :param manager: a :class:`~mongo_session_backends.MongoManager` to share.
        Default: a new one from ``manager_options``. Giving both is refused.
    :param manager_options: :class:`~mongo_session_backends.MongoManager`
        options (``uri``, ``database_name``, ``collection``, ``serializer`` ...).
        ``expires`` is refused: the session lifetime is ``timeout``.
    """

    def __init__(
        self,
        secret: str | bytes,
        *,
        timeout: float | dt.timedelta | str | None = 1200,
        reissue_time: float | dt.timedelta | str | None = 120,
        cookie_name: str = "session",
        max_age: int | str | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool | str = False,
        httponly: bool | str = True,
        samesite: str | None = "Lax",
        set_on_exception: bool | str = True,
        key_prefix: str = "session:",
        empty_on_outage: bool | str = False,
        manager: MongoManager | None = None,
        **manager_options: Any,
    ) -> None:
        if not isinstance(secret, (str, bytes)) or len(secret) < 16:
            raise ConfigurationError("the session secret must be a str of at least 16 characters")
        given = {
            "timeout": timeout, "reissue_time": reissue_time, "cookie_name": cookie_name,
            "max_age": max_age, "path": path, "domain": domain, "secure": secure,
            "httponly": httponly, "samesite": samesite, "set_on_exception": set_on_exception,
            "key_prefix": key_prefix, "empty_on_outage": empty_on_outage,
        }  # fmt: skip
        o = {name: coerce(name, value, FACTORY_OPTIONS[name]) for name, value in given.items()}
        if o["timeout"] is not None and o["timeout"] <= 0:
            raise ConfigurationError("timeout must be positive, or None for no timeout")
        if o["max_age"] is not None and o["max_age"] < 0:
            raise ConfigurationError("max_age must not be negative, or None for a browser session")
        if not o["cookie_name"]:
            raise ConfigurationError("cookie_name must not be empty")
        secret_text = secret.decode() if isinstance(secret, bytes) else secret
        self.timeout: float | None = o["timeout"]
        #: The stored entry's lifetime: ``0`` (never) when ``timeout`` is ``None``.
        self.lifetime = 0 if self.timeout is None else self.timeout
        self.reissue_time: float | None = o["reissue_time"]
        self.cookie_name: str = o["cookie_name"]
        self.max_age: int | None = o["max_age"]
        self.set_on_exception: bool = o["set_on_exception"]
        #: What a session does while MongoDB is down (``empty_on_outage``).
        self.policy = OutagePolicy("session", o["empty_on_outage"])
        self.store = adapter_store(
            "pyramid",
            manager,
            manager_options,
            o["key_prefix"],
            kind=MongoManager,
            lifetime="timeout",
        )
        self.serializer = self.store.serializer
        self._profile = CookieProfile(
            self.cookie_name,
            secure=o["secure"],
            max_age=self.max_age,
            httponly=o["httponly"],
            samesite=o["samesite"],
            path=o["path"],
            domains=[o["domain"]] if o["domain"] else None,
            serializer=SignedSerializer(
                secret_text, "mongo_session_backends.pyramid", "sha512", _IdSerializer()
            ),
        )

    def __repr__(self) -> str:
        return f"MongoSessionFactory(cookie_name={self.cookie_name!r}, store={self.store!r})"

    @property
    def empty_on_outage(self) -> bool:
        """Whether a session reads as empty and drops its writes while MongoDB is down."""
        return self.policy.tolerate

    def now(self) -> float:
        """The current time in epoch seconds, from the manager's clock."""
        return self.store.clock().timestamp()

    def cookie(self, request: Any) -> Any:
        """The cookie profile bound to ``request``."""
        return self._profile.bind(request)

    def __call__(self, request: Any) -> MongoSession:
        return MongoSession(self, request)


def session_factory_from_settings(
    settings: Mapping[str, Any], prefix: str = SETTINGS_PREFIX
) -> MongoSessionFactory:
    """Build a :class:`MongoSessionFactory` from ``mongo_sessions.*`` settings.

    Values may be the raw strings of an ``.ini`` file; secrets may be given
    as ``env:NAME``. Unknown or malformed settings raise
    :class:`~mongo_session_backends.ConfigurationError`.
    """
    options = {k[len(prefix) :]: v for k, v in settings.items() if k.startswith(prefix)}
    manager, adapter = manager_options(options, ADAPTER_SETTINGS)
    secret = adapter.pop("secret", None)
    if not secret:
        raise ConfigurationError(f"the setting {prefix}secret is required")
    factory_options = {_RENAMED.get(k, k): v for k, v in adapter.items()}
    return MongoSessionFactory(secret, **factory_options, **manager)


def includeme(config: Any) -> None:
    """Set the session factory from the ``mongo_sessions.*`` settings."""
    config.set_session_factory(session_factory_from_settings(config.get_settings()))
