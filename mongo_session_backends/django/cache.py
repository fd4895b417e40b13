"""Django cache backend: :class:`MongoDBCache`.

.. code-block:: python

    CACHES = {
        "default": {
            "BACKEND": "mongo_session_backends.django.cache.MongoDBCache",
            "LOCATION": "mongodb://localhost:27017/myapp",
            "OPTIONS": {"collection": "django_cache"},
        }
    }

Each entry is one document under the id ``django-cache:<KEY_PREFIX>:`` plus
Django's full key (``KEY_FUNCTION``, by default ``<KEY_PREFIX>:<VERSION>:<key>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

from ..exceptions import ConfigurationError, MongoSessionError
from . import stores

__all__ = ["CacheKeyMissing", "MongoDBCache"]

_MISSING: Any = object()
#: Options of Django's own backends that have no meaning here.
_CULLING = ("MAX_ENTRIES", "CULL_FREQUENCY")


class CacheKeyMissing(MongoSessionError, ValueError):
    """``incr``/``decr`` of a key that is not in the cache (Django raises ``ValueError``)."""


class MongoDBCache(BaseCache):  # type: ignore[misc]
    """A Django cache stored in MongoDB.

    Django builds it from a ``CACHES`` entry:

    * ``LOCATION``: the MongoDB URI, or ``env:NAME`` to read it from the
      environment variable ``NAME``. Default ``mongodb://127.0.0.1:27017``.
    * ``TIMEOUT``: seconds an entry lives when no timeout is given. Django's
      default is 300; ``None`` means for ever, ``0`` expires at once.
    * ``KEY_PREFIX``, ``VERSION``, ``KEY_FUNCTION``: as for every Django
      cache. :meth:`clear` deletes the entries of this ``KEY_PREFIX`` only.
    * ``OPTIONS``: any :class:`~mongo_session_backends.MongoManager` option
      (``database_name``, ``collection``, ``serializer``,
      ``serializer_secret``, ``encryption_keys``, ``connection_options``
      ...), typed or as strings; secrets may be ``env:NAME``. Values are
      stored as native BSON unless ``"serializer": "pickle"`` (with a
      ``serializer_secret``) is given, which model instances and other
      objects need; storing one without it raises
      :class:`~mongo_session_backends.SerializationError`, naming that option.

    Every operation is one command, except ``incr``/``decr`` (a check that
    the key exists, as Django requires, then the atomic increment). Errors
    are raised, as with Django's own backends: a MongoDB outage raises
    :class:`~mongo_session_backends.ServerUnavailable`.
    """

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        options = params.get("OPTIONS") or {}
        if not isinstance(options, Mapping):
            raise ConfigurationError("the OPTIONS of the Django cache must be a dict")
        given = [name for name in _CULLING if name in options]
        if given:
            raise ConfigurationError(
                f"OPTIONS {', '.join(given)}: the MongoDB cache does not cull; entries "
                "leave when they expire (TIMEOUT)"
            )
        super().__init__(params)
        self._stores = stores(
            "Django cache", location, options, f"django-cache:{self.key_prefix}:", "TIMEOUT"
        )

    def _timeout(self, timeout: Any) -> float:
        """The store's timeout for a Django timeout: ``0`` is never, below 0 already expired."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return 0
        return float(timeout) if timeout > 0 else -1

    def _keys(self, keys: Iterable[Any], version: int | None) -> dict[str, Any]:
        return {self.make_and_validate_key(key, version=version): key for key in keys}

    # -- sync -----------------------------------------------------------------

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._stores.sync.add(key, value, self._timeout(timeout))

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        return self._stores.sync.get(key, default)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        key = self.make_and_validate_key(key, version=version)
        self._stores.sync.set(key, value, self._timeout(timeout))

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._stores.sync.touch(key, self._timeout(timeout))

    def delete(self, key: Any, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._stores.sync.delete(key)

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        made = self._keys(keys, version)
        values = self._stores.sync.get_many(list(made), _MISSING)
        return {made[k]: v for k, v in zip(made, values, strict=True) if v is not _MISSING}

    def set_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        mapping = {self.make_and_validate_key(k, version=version): v for k, v in data.items()}
        self._stores.sync.set_many(mapping, self._timeout(timeout))
        return []

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        self._stores.sync.delete_many(list(self._keys(keys, version)))

    def has_key(self, key: Any, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._stores.sync.has(key)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        key = self.make_and_validate_key(key, version=version)
        value = self._stores.sync.incr_live(key, delta)  # one command
        if value is None:
            raise CacheKeyMissing("the key is not in the cache")
        return value

    def clear(self) -> None:
        """Delete every entry of this cache's ``KEY_PREFIX`` (of every version)."""
        self._stores.sync.clear()

    # -- async ----------------------------------------------------------------

    async def aadd(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return await self._stores.async_.add(key, value, self._timeout(timeout))

    async def aget(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        return await self._stores.async_.get(key, default)

    async def aset(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        key = self.make_and_validate_key(key, version=version)
        await self._stores.async_.set(key, value, self._timeout(timeout))

    async def atouch(
        self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return await self._stores.async_.touch(key, self._timeout(timeout))

    async def adelete(self, key: Any, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return await self._stores.async_.delete(key)

    async def aget_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        made = self._keys(keys, version)
        values = await self._stores.async_.get_many(list(made), _MISSING)
        return {made[k]: v for k, v in zip(made, values, strict=True) if v is not _MISSING}

    async def aset_many(
        self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        mapping = {self.make_and_validate_key(k, version=version): v for k, v in data.items()}
        await self._stores.async_.set_many(mapping, self._timeout(timeout))
        return []

    async def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        await self._stores.async_.delete_many(list(self._keys(keys, version)))

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return await self._stores.async_.has(key)

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        key = self.make_and_validate_key(key, version=version)
        value = await self._stores.async_.incr_live(key, delta)  # one command
        if value is None:
            raise CacheKeyMissing("the key is not in the cache")
        return value

    async def aclear(self) -> None:
        """Delete every entry of this cache's ``KEY_PREFIX`` (of every version)."""
        await self._stores.async_.clear()
