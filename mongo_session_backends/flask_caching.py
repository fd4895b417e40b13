"""Flask-Caching backend: :class:`MongoDBCache`, selected by configuration.

Set ``CACHE_TYPE = "mongo_session_backends.flask_caching.MongoDBCache"``,
``CACHE_MONGODB_URI`` and ``CACHE_OPTIONS = {"serializer_secret": ...}``; the
quick start shows a whole app.

``@cache.cached`` stores what a view returns: text, or a response object
(``jsonify(...)``, Flask-Caching's ``CachedResponse``), and for an aborted
view its ``HTTPException`` (a 404's ``NotFound``). The native serializer
refuses response and exception objects and Flask-Caching only logs the
refusal, so such views would silently never be cached. This backend therefore
stores with the signed pickle serializer unless told otherwise.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_caching.backends.base import BaseCache as FlaskCachingBase

from . import cachelib
from .exceptions import ConfigurationError

__all__ = ["MongoDBCache"]


class MongoDBCache(cachelib.MongoDBCache, FlaskCachingBase):
    """:class:`mongo_session_backends.cachelib.MongoDBCache` for Flask-Caching.

    Flask-Caching builds it through :meth:`factory` from the app's
    configuration:

    * ``CACHE_MONGODB_URI``: the MongoDB URI. Default
      ``mongodb://127.0.0.1:27017``.
    * ``CACHE_KEY_PREFIX``: the key prefix; ``cache.clear()`` removes only
      this prefix's entries. Flask-Caching's default is ``"flask_cache_"``.
    * ``CACHE_DEFAULT_TIMEOUT``: seconds an entry lives when a decorator
      gives no timeout. Flask-Caching's default is 300; ``0`` means never.
    * ``CACHE_IGNORE_ERRORS``: if false (Flask-Caching's default),
      ``delete_many`` raises ``RuntimeError`` when a key could not be deleted.
    * ``CACHE_OPTIONS``: any :class:`~mongo_session_backends.MongoManager`
      option (``database_name``, ``collection``, ``serializer_secret``,
      ``encryption_keys``, ``manager`` ...). ``serializer`` defaults to
      ``"pickle"`` here, which needs ``serializer_secret`` (at least 16
      bytes); give ``serializer="native"`` to cache plain values only.

    ``CACHE_SERIALIZER`` (an unsigned cachelib serializer) and ``CACHE_ARGS``
    are refused with :class:`~mongo_session_backends.ConfigurationError`.
    """

    adapter_name = "Flask-Caching"

    @classmethod
    def factory(
        cls, app: Flask, config: dict[str, Any], args: list[Any], kwargs: dict[str, Any]
    ) -> MongoDBCache:
        """Build the cache from Flask-Caching's configuration (see the class)."""
        if config.get("CACHE_SERIALIZER") is not None:
            raise ConfigurationError(
                "CACHE_SERIALIZER is not used by this backend: give CACHE_OPTIONS "
                "serializer='pickle' (the default) with serializer_secret"
            )
        if args:
            raise ConfigurationError("CACHE_ARGS is not used by this backend: use CACHE_OPTIONS")
        options = {"key_prefix": config.get("CACHE_KEY_PREFIX"), **kwargs}
        uri = config.get("CACHE_MONGODB_URI")
        if uri is not None:
            if "uri" in options:
                raise ConfigurationError("give the URI once: CACHE_MONGODB_URI or CACHE_OPTIONS")
            options["uri"] = uri
        if "manager" not in options:  # a shared manager brings its own serializer
            options.setdefault("serializer", "pickle")
            if options["serializer"] == "pickle" and not options.get("serializer_secret"):
                raise ConfigurationError(
                    "Flask-Caching stores responses and exceptions, which need the signed "
                    "pickle serializer: set CACHE_OPTIONS = {'serializer_secret': ...} (at "
                    "least 16 bytes), or serializer='native' to cache plain values only"
                )
        return cls(**options)
