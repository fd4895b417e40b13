"""cachelib adapter: :class:`MongoDBCache`, a ``BaseCache`` on MongoDB.

Works anywhere a cachelib cache does, including Flask-Session with
``SESSION_TYPE = "cachelib"`` and ``SESSION_CACHELIB = MongoDBCache(...)``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from cachelib.base import BaseCache

from .adapter import OutagePolicy, adapter_store
from .codec import MAX_TIMEOUT, seconds
from .config import as_bool, as_seconds, coerce
from .exceptions import ConfigurationError, DeleteManyError
from .manager import MongoManager
from .serializers import Serializer

__all__ = ["MongoDBCache"]


class MongoDBCache(BaseCache):
    """A cachelib cache stored in MongoDB.

    Outages follow cachelib's contract: ``get`` returns ``None``, ``set``
    and friends return ``False``, and a warning is logged. Everything else
    raises a :class:`~mongo_session_backends.MongoSessionError`: bad input
    (a key that is not ``str``/``bytes``, a value that cannot be
    serialized, a value over 16 MB), bad configuration, a closed manager, a
    command MongoDB refuses.

    :param default_timeout: seconds an entry lives when ``set`` is given no
        timeout. Default 300. ``0`` means never. (The manager option
        ``expires`` does not apply here and is refused.)
    :param key_prefix: prepended to every key, under the manager's own
        prefix; :meth:`clear` removes only this prefix's entries. Default
        ``None`` (no prefix).
    :param ignore_delete_many_errors: if ``False``, :meth:`delete_many`
        raises :class:`~mongo_session_backends.DeleteManyError` (a
        ``RuntimeError``) when the keys could not be deleted. Default ``True``.
    :param manager: a :class:`~mongo_session_backends.MongoManager` to share
        with other adapters. Default: a new one built from
        ``manager_options``. Giving both is refused.
    :param manager_options: keyword arguments for
        :class:`~mongo_session_backends.MongoManager` (``uri``,
        ``database_name``, ``collection``, ``serializer``,
        ``serializer_secret`` ...). ``client`` may be a URI string, as with
        cachelib's own ``MongoDbCache``.

    Values are stored with the manager's serializer (``serializer=`` among
    the manager options). Assigning :attr:`serializer` on the instance
    replaces it for this cache, as cachelib's test suite does.
    """

    #: The adapter's name in messages.
    adapter_name = "cachelib"

    def __init__(
        self,
        default_timeout: int = 300,
        key_prefix: str | None = None,
        ignore_delete_many_errors: bool = True,
        *,
        manager: MongoManager | None = None,
        **manager_options: Any,
    ) -> None:
        seconds = coerce("default_timeout", default_timeout, as_seconds)
        if seconds is not None and seconds > MAX_TIMEOUT:
            raise ConfigurationError(f"default_timeout must be at most {MAX_TIMEOUT} seconds")
        super().__init__(300 if seconds is None else math.ceil(seconds))
        ignore_delete_many_errors = coerce(
            "ignore_delete_many_errors", ignore_delete_many_errors, as_bool
        )
        self.key_prefix = key_prefix or ""
        self.ignore_delete_many_errors = ignore_delete_many_errors
        #: The manager's view under ``key_prefix``: every command goes through it.
        self.store = adapter_store(
            self.adapter_name,
            manager,
            manager_options,
            self.key_prefix,
            kind=MongoManager,
            lifetime="default_timeout",
        )
        self._policy = OutagePolicy("cache", tolerate=True)
        self._serializer: Serializer | None = None

    def _normalize_timeout(self, timeout: int | dt.timedelta | None) -> int:
        """cachelib's rounding, after this package's check of the value.

        NaN, infinity, a string or a bool raise
        :class:`~mongo_session_backends.ConfigurationError` here, as in the
        manager, rather than a bare ``TypeError`` from cachelib.
        """
        seconds(timeout, "timeout")
        return int(super()._normalize_timeout(timeout))

    @property
    def serializer(self) -> Serializer:
        """The serializer in use: the manager's, unless replaced on this instance."""
        return self._serializer or self.store.serializer

    @serializer.setter
    def serializer(self, value: Serializer) -> None:
        self._serializer = value

    @property
    def manager(self) -> MongoManager:
        """The same as :attr:`store`, the manager's view under ``key_prefix``."""
        return self.store

    def get(self, key: str) -> Any:
        return self._policy.run(None, self.store.get, key, serializer=self._serializer)

    def get_many(self, *keys: str) -> list[Any]:
        fallback: list[Any] = [None] * len(keys)
        return self._policy.run(fallback, self.store.get_many, keys, serializer=self._serializer)

    def get_dict(self, *keys: str) -> dict[str, Any]:
        return dict(zip(keys, self.get_many(*keys), strict=True))

    def set(self, key: str, value: Any, timeout: int | dt.timedelta | None = None) -> bool:
        timeout = self._normalize_timeout(timeout)
        return self._policy.run(
            False, self.store.set, key, value, timeout, serializer=self._serializer
        )

    def set_many(
        self, mapping: dict[str, Any], timeout: int | dt.timedelta | None = None
    ) -> list[Any]:
        timeout = self._normalize_timeout(timeout)
        fallback: list[Any] = []
        return self._policy.run(
            fallback, self.store.set_many, mapping, timeout, serializer=self._serializer
        )

    def add(self, key: str, value: Any, timeout: int | dt.timedelta | None = None) -> bool:
        timeout = self._normalize_timeout(timeout)
        return self._policy.run(
            False, self.store.add, key, value, timeout, serializer=self._serializer
        )

    def delete(self, key: str) -> bool:
        return self._policy.run(False, self.store.delete, key)

    def delete_many(self, *keys: str) -> list[Any]:
        if self._policy.run(None, self.store.delete_many, keys) is None:
            if not self.ignore_delete_many_errors:
                raise DeleteManyError("delete_many could not delete the keys: MongoDB is down")
            return []
        return list(keys)

    def has(self, key: str) -> bool:
        return self._policy.run(False, self.store.has, key, serializer=self._serializer)

    def clear(self) -> bool:
        return self._policy.run(None, self.store.clear) is not None

    def inc(self, key: str, delta: int = 1) -> int | None:
        timeout = self._normalize_timeout(None)
        return self._policy.run(
            None, self.store.incr, key, delta, timeout, serializer=self._serializer
        )

    def dec(self, key: str, delta: int = 1) -> int | None:
        return self.inc(key, -delta)

    def touch(self, key: str, timeout: int | dt.timedelta | None = None) -> bool:
        """Give a live entry a new timeout without rewriting it."""
        timeout = self._normalize_timeout(timeout)
        return self._policy.run(False, self.store.touch, key, timeout)

    def close(self) -> None:
        """Close the manager's connection."""
        self.store.close()
