"""cachelib adapter: :class:`MongoDBCache`, a ``BaseCache`` on MongoDB.

Works anywhere a cachelib cache does, including Flask-Session with
``SESSION_TYPE = "cachelib"`` and ``SESSION_CACHELIB = MongoDBCache(...)``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from cachelib.base import BaseCache

from .exceptions import OperationError, ServerUnavailable
from .manager import MongoManager
from .serializers import NativeSerializer, Serializer

__all__ = ["MongoDBCache"]

log = logging.getLogger("mongo_session_backends")
_BACKEND_ERRORS = (ServerUnavailable, OperationError)


class MongoDBCache(BaseCache):
    """A cachelib cache stored in MongoDB.

    Backend failures follow cachelib's contract: ``get`` returns ``None``,
    ``set`` and friends return ``False``, and a warning is logged. Bad input
    (a key that is not ``str``/``bytes``, a value that cannot be serialized,
    a value over 16 MB) raises.

    :param default_timeout: seconds an entry lives when ``set`` is given no
        timeout. Default 300. ``0`` means never.
    :param key_prefix: prepended to every key; :meth:`clear` removes only
        this prefix's entries. Default ``None`` (no prefix).
    :param ignore_delete_many_errors: if ``False``, :meth:`delete_many`
        raises ``RuntimeError`` when a key could not be deleted. Default
        ``True``.
    :param manager: a :class:`~mongo_session_backends.MongoManager` to share
        with other adapters. Default: a new one built from
        ``manager_options``.
    :param manager_options: keyword arguments for
        :class:`~mongo_session_backends.MongoManager` (``uri``,
        ``database_name``, ``collection`` ...).
    """

    #: Read at call time, so it can be replaced on an instance.
    serializer: Serializer = NativeSerializer()

    def __init__(
        self,
        default_timeout: int = 300,
        key_prefix: str | None = None,
        ignore_delete_many_errors: bool = True,
        *,
        manager: MongoManager | None = None,
        **manager_options: Any,
    ) -> None:
        super().__init__(default_timeout)
        if manager is not None and manager_options:
            raise TypeError("pass either manager or manager options, not both")
        self.key_prefix = key_prefix or ""
        self.ignore_delete_many_errors = ignore_delete_many_errors
        self.manager = (manager or MongoManager(**manager_options)).with_prefix(self.key_prefix)

    def _safe(self, fallback: Any, op: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a manager operation; on a backend failure log and return ``fallback``."""
        try:
            return op(*args, **kwargs)
        except _BACKEND_ERRORS as exc:
            log.warning("cache %s failed: %s", op.__name__, exc)
            return fallback

    def get(self, key: str) -> Any:
        return self._safe(None, self.manager.get, key, serializer=self.serializer)

    def get_many(self, *keys: str) -> list[Any]:
        fallback = [None] * len(keys)
        return self._safe(fallback, self.manager.get_many, keys, serializer=self.serializer)  # type: ignore[no-any-return]

    def get_dict(self, *keys: str) -> dict[str, Any]:
        return dict(zip(keys, self.get_many(*keys), strict=True))

    def set(self, key: str, value: Any, timeout: int | dt.timedelta | None = None) -> bool:
        timeout = self._normalize_timeout(timeout)
        return self._safe(False, self.manager.set, key, value, timeout, serializer=self.serializer)  # type: ignore[no-any-return]

    def set_many(
        self, mapping: dict[str, Any], timeout: int | dt.timedelta | None = None
    ) -> list[Any]:
        timeout = self._normalize_timeout(timeout)
        return self._safe([], self.manager.set_many, mapping, timeout, serializer=self.serializer)  # type: ignore[no-any-return]

    def add(self, key: str, value: Any, timeout: int | dt.timedelta | None = None) -> bool:
        timeout = self._normalize_timeout(timeout)
        return self._safe(False, self.manager.add, key, value, timeout, serializer=self.serializer)  # type: ignore[no-any-return]

    def delete(self, key: str) -> bool:
        return self._safe(False, self.manager.delete, key)  # type: ignore[no-any-return]

    def delete_many(self, *keys: str) -> list[Any]:
        if self._safe(None, self.manager.delete_many, keys) is None:
            if not self.ignore_delete_many_errors:
                raise RuntimeError("delete_many could not delete every key")
            return []
        return list(keys)

    def has(self, key: str) -> bool:
        return self._safe(False, self.manager.has, key)  # type: ignore[no-any-return]

    def clear(self) -> bool:
        return self._safe(None, self.manager.clear) is not None

    def inc(self, key: str, delta: int = 1) -> int | None:
        timeout = self._normalize_timeout(None)
        return self._safe(None, self.manager.incr, key, delta, timeout, serializer=self.serializer)  # type: ignore[no-any-return]

    def dec(self, key: str, delta: int = 1) -> int | None:
        return self.inc(key, -delta)

    def touch(self, key: str, timeout: int | dt.timedelta | None = None) -> bool:
        """Give a live entry a new timeout without rewriting it."""
        timeout = self._normalize_timeout(timeout)
        return self._safe(False, self.manager.touch, key, timeout)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the manager's connection."""
        self.manager.close()
