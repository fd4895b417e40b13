"""Flask-Session helpers for "log out everywhere".

For sessions stored by :class:`~mongo_session_backends.cachelib.MongoDBCache`.

Give the cache's manager ``owner_key="_user_id"`` (where Flask-Login keeps
the user id) and Flask-Session stores each session's owner with it::

    app.config["SESSION_TYPE"] = "cachelib"
    app.config["SESSION_CACHELIB"] = MongoDBCache(uri=..., owner_key="_user_id")

Then, in a view: :func:`log_out_other_sessions` for a "log out other
devices" button, :func:`log_out_everywhere` after a password change, and
``app.session_interface.regenerate(session)`` at login, which Flask-Session
provides, to give the session a new id.
"""

from __future__ import annotations

from typing import Any

import flask

from .cachelib import MongoDBCache
from .exceptions import ConfigurationError
from .manager import MongoManager

__all__ = ["current_owner", "log_out_everywhere", "log_out_other_sessions", "other_sessions"]


def _store() -> tuple[Any, MongoManager]:
    """The app's session interface and the cache's store, checked."""
    interface = flask.current_app.session_interface
    cache = getattr(interface, "cache", None)
    if not isinstance(cache, MongoDBCache):
        raise ConfigurationError(
            "these helpers need Flask-Session with SESSION_TYPE = 'cachelib' "
            "and SESSION_CACHELIB = MongoDBCache(...)"
        )
    if cache.store.owner_key is None:
        raise ConfigurationError("give the MongoDBCache owner_key='_user_id' (or your own key)")
    return interface, cache.store


def _current_key(interface: Any) -> str:
    """The current session's key in the cache (Flask-Session's ``key_prefix`` + its id)."""
    return str(interface.key_prefix) + str(getattr(flask.session, "sid", ""))


def current_owner() -> Any:
    """The logged-in user's id in the current session, or ``None``."""
    _, store = _store()
    return flask.session.get(store.owner_key or "")


def other_sessions() -> list[dict[str, Any]]:
    """The logged-in user's live sessions other than the current one.

    Each is a dict with ``handle``, ``created``, ``written`` and ``expires``.
    """
    interface, store = _store()
    owner = current_owner()
    if owner is None:
        return []
    return store.sessions(owner, keep=_current_key(interface))


def log_out_other_sessions() -> int:
    """End every session of the logged-in user but the current one; return how many."""
    interface, store = _store()
    owner = current_owner()
    if owner is None:
        return 0
    return store.revoke(owner, keep=_current_key(interface))


def log_out_everywhere(user_id: Any) -> int:
    """End every session of ``user_id`` (after a password change, a ban ...); return how many."""
    _, store = _store()
    return store.revoke(user_id)
