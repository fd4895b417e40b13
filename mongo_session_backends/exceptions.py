"""The exceptions raised by this package.

Every exception derives from :class:`MongoSessionError`, so one ``except``
clause catches them all. Messages never contain stored values or secrets,
and never a key, with one deliberate exception: a Pyramid session names the
session key (the name in the session dict, not the session id) whose value
cannot be stored, so the mistake can be found in the view.

Adapters that tolerate outages tolerate :class:`ServerUnavailable` only;
every other error is raised.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DeleteManyError",
    "IndexConflict",
    "KeyTypeError",
    "ManagerClosed",
    "MongoSessionError",
    "OperationError",
    "SerializationError",
    "ServerUnavailable",
    "ValueTooLarge",
]


class MongoSessionError(Exception):
    """Root of every exception raised by this package."""


class ConfigurationError(MongoSessionError, ValueError):
    """An option or setting is unknown, malformed or inconsistent."""


class KeyTypeError(MongoSessionError, TypeError):
    """A key is neither ``str`` nor UTF-8 ``bytes``."""


class SerializationError(MongoSessionError, TypeError):
    """A value cannot be stored by the configured serializer."""


class ValueTooLarge(MongoSessionError, ValueError):
    """The stored document would exceed MongoDB's 16 MB document limit.

    Nothing is written; the entry already stored under the key is unchanged.
    """


class ServerUnavailable(MongoSessionError, ConnectionError):
    """MongoDB could not be reached, or did not answer in time."""


class ManagerClosed(MongoSessionError, RuntimeError):
    """The manager was closed with ``close()`` and cannot be used any more.

    A programming error, not an outage: adapters never hide it.
    """


class OperationError(MongoSessionError):
    """MongoDB refused an operation. ``code`` is the server's error code."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class DeleteManyError(OperationError, RuntimeError):
    """cachelib's ``delete_many`` could not delete the keys.

    Raised only with ``ignore_delete_many_errors=False``, as cachelib's
    contract asks (a ``RuntimeError``).
    """


class IndexConflict(OperationError):
    """An existing index conflicts with the one this package needs."""
