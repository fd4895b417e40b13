"""Beaker adapter: :class:`MongoNamespaceManager`, registered as ``mongodb``.

Select it by configuration alone:

.. code-block:: ini

    session.type = mongodb
    session.url = mongodb://db.example.com:27017/myapp
    session.collection = beaker_sessions

or ``cache.type = mongodb`` for Beaker caches. Beaker's own ``ext:mongodb``
keeps its name. Give sessions the class :class:`MongoSession` (option
``session.session_class``) so that logging out deletes the stored record.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from beaker.container import NamespaceManager
from beaker.session import Session

from .adapter import OutagePolicy, adapter_store, shared_manager
from .config import as_bool, as_seconds, manager_options
from .exceptions import ConfigurationError
from .manager import MongoManager

__all__ = ["MongoLock", "MongoNamespaceManager", "MongoSession"]

_MISSING = object()

#: Beaker's own options, which it may pass on to a backend; ignored here.
BEAKER_OPTIONS = frozenset(
    {
        "auto", "cookie_domain", "cookie_expires", "cookie_path", "crypto_type",
        "data_dir", "data_serializer", "digest_filenames", "enabled", "encrypt_key",
        "encrypt_nonce_bits", "expire", "file_dir", "httponly", "id", "invalidate_corrupt",
        "key", "key_length", "lock_dir", "log_file", "regions", "samesite",
        "save_accessed_time", "secret", "secure", "session_class", "type", "validate_key",
        "webtest_varname",
    }
)  # fmt: skip
#: What Beaker's ``Session.clear()`` leaves in a session: its cookie settings.
_COOKIE_SETTINGS = frozenset({"_domain", "_path"})
#: Beaker's middleware passes each option twice: stripped, and as given.
_RAW_PREFIXES = ("session.", "cache.", "beaker.session.", "beaker.cache.")
ADAPTER_SETTINGS = {
    "timeout": as_seconds,
    "lock_timeout": as_seconds,
    "empty_on_outage": as_bool,
    "lock_poll": as_seconds,
}


def _positive(settings: dict[str, Any], name: str, default: float) -> float:
    value = settings.get(name, default)
    if value is None or value <= 0:
        raise ConfigurationError(f"setting {name!r} must be a positive number of seconds")
    return float(value)


class MongoLock:
    """A creation lock held in MongoDB, so it excludes other processes too.

    The lock expires after ``ttl`` seconds if its holder dies, and only its
    holder (the token it was taken with) can release it.
    """

    def __init__(self, manager: MongoManager, key: Any, ttl: float, poll: float) -> None:
        self.manager = manager
        self.key = key
        self.ttl = ttl
        self.poll = poll
        self.token = secrets.token_hex(16)

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock; with ``wait`` poll until it is free."""
        while True:
            if self.manager.acquire_lock(self.key, self.token, self.ttl):
                return True
            if not wait:
                return False
            time.sleep(self.poll)

    def release(self) -> None:
        """Release the lock if this object holds it."""
        self.manager.release_lock(self.key, self.token)


class MongoNamespaceManager(NamespaceManager):  # type: ignore[misc]
    """A Beaker namespace stored in MongoDB.

    Every option may be given as the raw string of an ``.ini`` file.

    :param namespace: the Beaker namespace (a session id, or a cache name).
    :param url: MongoDB URI (or ``env:NAME``); its database is used unless
        ``database_name`` is given. Default ``mongodb://127.0.0.1:27017``.
    :param timeout: seconds an entry lives when Beaker gives no expiry
        (Beaker's ``Session`` passes ``session.timeout`` plus 120). Default:
        the manager's ``expires`` (14 days).
    :param lock_timeout: seconds after which a creation lock frees itself if
        its holder died. Default 30; must be positive.
    :param lock_poll: seconds between tries for a held creation lock.
        Default 0.05; must be positive.
    :param empty_on_outage: when MongoDB is unreachable, read as empty and
        drop writes (with a warning) instead of raising
        :class:`~mongo_session_backends.ServerUnavailable`. Default ``False``.
    :param manager: a :class:`~mongo_session_backends.MongoManager` to use;
        namespaces nest under its prefix. Default: one shared per process
        and configuration. Giving manager options as well is refused.
    :param client: a ``MongoClient`` (or a URI) to use instead of ``url``;
        a client is never closed here. Default ``None``.
    :param options: any :class:`~mongo_session_backends.MongoManager` option
        (``database_name``, ``collection``, ``serializer``,
        ``encryption_keys``, ``connection_options.NAME`` ...). Beaker's own
        options (``data_dir``, ``lock_dir``, ``type``, ``key`` ...), and the
        prefixed copies (``session.type`` ...) that Beaker's middleware
        passes as well, are accepted and ignored. Unknown options raise
        :class:`~mongo_session_backends.ConfigurationError`.

    The read and write locks are no-ops: each operation is a single atomic
    MongoDB command.
    """

    def __init__(
        self,
        namespace: str,
        url: str | None = None,
        *,
        manager: MongoManager | None = None,
        client: Any = None,
        **options: Any,
    ) -> None:
        super().__init__(namespace)
        if url is not None:
            options["url"] = url
        settings = {k: v for k, v in options.items() if not k.startswith(_RAW_PREFIXES)}
        base, adapter = manager_options(settings, ADAPTER_SETTINGS, BEAKER_OPTIONS)
        if client is not None:
            base["client"] = client
        self.timeout = adapter.get("timeout")
        self.lock_timeout = _positive(adapter, "lock_timeout", 30)
        self.lock_poll = _positive(adapter, "lock_poll", 0.05)
        self._policy = OutagePolicy("beaker", adapter.get("empty_on_outage", False))
        # The length makes the prefix exact: namespace "a:b" cannot see "a".
        prefix = f"beaker:{len(namespace)}:{namespace}:"
        self.store = adapter_store(
            "beaker", manager, base, prefix, kind=MongoManager, build=shared_manager(MongoManager)
        )

    @property
    def empty_on_outage(self) -> bool:
        """Whether reads are empty and writes dropped while MongoDB is down."""
        return self._policy.tolerate

    def get_creation_lock(self, key: Any) -> MongoLock:
        return MongoLock(self.store, key, self.lock_timeout, self.lock_poll)

    def do_remove(self) -> None:
        self._policy.run(None, self.store.clear)

    def __getitem__(self, key: Any) -> Any:
        value = self._policy.run(_MISSING, self.store.get, key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: Any) -> bool:
        return self._policy.run(False, self.store.has, key)

    def set_value(self, key: Any, value: Any, expiretime: float | None = None) -> None:
        """Store ``value``; ``expiretime`` in seconds, ``0`` for no expiry (as Beaker's backends).

        ``None`` uses the namespace ``timeout``, else the manager's ``expires``.
        """
        timeout = self.timeout if expiretime is None else expiretime
        self._policy.run(None, self.store.set, key, value, timeout)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.set_value(key, value)

    def __delitem__(self, key: Any) -> None:
        if self._policy.run(True, self.store.delete, key) is False:
            raise KeyError(key)

    def keys(self) -> list[str]:
        return self._policy.run([], self.store.keys)


class MongoSession(Session):  # type: ignore[misc]
    """A Beaker ``Session`` that leaves nothing behind and knows its owner.

    - ``delete()`` and ``invalidate()`` delete the stored record. Beaker's
      own ``Session.delete()`` empties the session down to its cookie
      settings (``_domain``, ``_path``) and the middleware then saves that,
      so the record stays live until it expires; ``invalidate()`` leaves the
      old record behind. This class deletes the record instead of saving a
      session that holds nothing but those settings (Beaker's own rule for
      an empty session).
    - ``regenerate_id()`` (call it at login) deletes the record under the
      old id; Beaker's leaves it.
    - With the manager option ``owner_key`` (``session.owner_key``), the
      logged-in user's id is recorded with the session when it changes, so
      ``manager.revoke(user_id)`` ends it.

    Give it as the option ``session.session_class`` (the class itself, not
    its name) in ``SessionMiddleware``'s configuration or pyramid_beaker's
    settings.
    """

    def _namespace(self, session_id: str) -> Any:
        # The same namespace Beaker's own save() builds for this id.
        return self.namespace_class(
            session_id, data_dir=self.data_dir, digest_filenames=False, **self.namespace_args
        )

    def _delete_record(self, session_id: str | None = None) -> None:
        try:
            del self._namespace(session_id or self.id)["session"]
        except KeyError:
            pass

    def _owner(self) -> Any:
        store = getattr(getattr(self, "namespace", None), "store", None)
        key = getattr(store, "owner_key", None)
        return None if key is None else self.get(key)

    def load(self) -> None:
        super().load()
        self._owner_stored = self._owner()

    def save(self, accessed_only: bool = False) -> None:
        """Save the session, or delete its record when it holds nothing."""
        if not accessed_only and not set(self) - _COOKIE_SETTINGS:
            self._delete_record()
            return
        super().save(accessed_only)
        owner = self._owner()
        if owner != getattr(self, "_owner_stored", None):
            self.namespace.store.set_owner("session", owner)  # one command, at login or logout
            self._owner_stored = owner

    def invalidate(self) -> None:
        """Delete the stored record, then start an empty session with a new id."""
        if not self.is_new:
            self._delete_record()
        super().invalidate()

    def regenerate_id(self) -> None:
        """Give the session a new id, keep its data, and delete the old record."""
        old, was_new = self.id, self.is_new
        super().regenerate_id()
        if not was_new:
            self._delete_record(old)
        self._owner_stored = None  # the record under the new id has no owner yet
