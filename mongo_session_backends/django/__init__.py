"""Django adapter: a session engine and a cache backend on MongoDB.

* ``SESSION_ENGINE = "mongo_session_backends.django.session"`` with the
  ``MONGO_SESSIONS`` setting (:mod:`mongo_session_backends.django.session`);
* ``CACHES = {"default": {"BACKEND": "mongo_session_backends.django.cache.MongoDBCache",
  ...}}`` (:mod:`mongo_session_backends.django.cache`).

Both read their options the way ``CACHES`` entries are written: ``LOCATION``
(the MongoDB URI, or ``env:NAME``) and ``OPTIONS`` (the
:class:`~mongo_session_backends.MongoManager` options, typed or as strings).
Adding ``"mongo_session_backends.django"`` to ``INSTALLED_APPS`` adds a
system check of these settings and the ``manage.py mongo_sessions`` command.

Every session store and cache of a process with the same manager options
shares one :class:`~mongo_session_backends.MongoManager` (one
``MongoClient``) for sync code and one
:class:`~mongo_session_backends.AsyncMongoManager` for async code, so
Django's per-thread and per-task backend instances open no clients of their
own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ..adapter import adapter_store, once, shared_manager
from ..async_manager import AsyncMongoManager
from ..config import as_uri, coerce, manager_options
from ..exceptions import ConfigurationError
from ..manager import BaseManager, MongoManager

__all__ = ["Stores", "stores"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseManager)


def _options_key(options: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), repr(v)) for k, v in options.items()))


@dataclass(frozen=True)
class Stores:
    """An adapter's views of the shared managers, for sync and for async code."""

    sync: MongoManager
    async_: AsyncMongoManager


def stores(
    adapter: str,
    location: Any,
    options: Mapping[str, Any] | None,
    prefix: str,
    lifetime: str,
) -> Stores:
    """The stores for one configuration, made once per process.

    :param adapter: the adapter's name, for messages.
    :param location: the ``LOCATION``: a MongoDB URI or ``env:NAME``;
        ``None`` or ``""`` for the ``uri`` of ``options``, else
        ``mongodb://127.0.0.1:27017``.
    :param options: the ``OPTIONS``: manager options, typed or as strings.
    :param prefix: the adapter's key prefix, under the manager's ``prefix``.
    :param lifetime: the Django setting that sets the lifetime, named when
        the manager option ``expires`` is given.
    :raises ConfigurationError: for an unknown, malformed or conflicting option.
    """
    if options is not None and not isinstance(options, Mapping):
        raise ConfigurationError(f"the OPTIONS of the {adapter} must be a dict")
    key = (adapter, repr(location), _options_key(options or {}), prefix)
    return once(key, lambda: _build(adapter, location, options or {}, prefix, lifetime))


def _build(
    adapter: str,
    location: Any,
    options: Mapping[str, Any],
    prefix: str,
    lifetime: str,
) -> Stores:
    settings = dict(options)
    if "client" in settings:
        raise ConfigurationError(
            f"the {adapter} does not take a client: give LOCATION, so that one MongoClient "
            "serves sync code and one AsyncMongoClient per event loop serves async code"
        )
    if location:
        if "uri" in settings or "url" in settings:
            raise ConfigurationError(
                f"give the {adapter} its URI as LOCATION or as OPTIONS uri, not both"
            )
        settings["uri"] = coerce("LOCATION", location, as_uri)  # named as the user wrote it
    base, _ = manager_options(settings)
    return Stores(
        adapter_store(
            adapter, None, base, prefix, kind=MongoManager, lifetime=lifetime,
            build=shared_manager(MongoManager),
        ),
        adapter_store(
            adapter, None, base, prefix, kind=AsyncMongoManager, lifetime=lifetime,
            build=shared_manager(AsyncMongoManager),
        ),
    )  # fmt: skip
