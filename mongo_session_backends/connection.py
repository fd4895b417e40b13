"""Connecting to MongoDB: client options, URI checks, masking and error translation.

Nothing here sends a command. :func:`new_client` builds a ``MongoClient``
without connecting, so every mistake pymongo can find locally (a malformed
URI, an unknown or malformed option, an invalid database or collection name)
is reported when the manager is constructed, not at first use.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from bson.errors import InvalidDocument
from pymongo import MongoClient
from pymongo.common import URI_OPTIONS_VALIDATOR_MAP
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DocumentTooLarge,
    InvalidName,
    InvalidURI,
    PyMongoError,
    WaitQueueTimeoutError,
)
from pymongo.errors import ConfigurationError as PyMongoConfigurationError

from .exceptions import (
    ConfigurationError,
    MongoSessionError,
    OperationError,
    SerializationError,
    ServerUnavailable,
    ValueTooLarge,
)

__all__ = [
    "DEFAULT_CONNECTION_OPTIONS",
    "DEFAULT_URI",
    "Preparation",
    "client_options",
    "mask_text",
    "mask_uri",
    "new_client",
    "translate",
    "translated",
]

DEFAULT_URI = "mongodb://127.0.0.1:27017"
DEFAULT_CONNECTION_OPTIONS: dict[str, Any] = {
    "serverSelectionTimeoutMS": 5000,
    "connectTimeoutMS": 5000,
    "socketTimeoutMS": 10000,
    "appname": "mongo-session-backends",
    "tz_aware": True,
}
_SECRET_OPTION = re.compile(r"password|secret|token|authmechanismproperties", re.IGNORECASE)
_TOO_LARGE_CODES = {10334, 17419, 17420}
_KNOWN_OPTIONS = frozenset(name.lower() for name in URI_OPTIONS_VALIDATOR_MAP)
# What pymongo only warns about in a URI: an unknown option, or a malformed value.
_BAD_URI_OPTION = re.compile(r"^Unknown option|^The value of |must be ")
# Shutdown, step-down and network errors the server reports as command errors.
_UNAVAILABLE_CODES = {6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436}

RETRY_WAIT = (1.0, 60.0)  # first and longest wait before preparing the collection again
log = logging.getLogger("mongo_session_backends")
P = ParamSpec("P")
R = TypeVar("R")


def _split(uri: str) -> tuple[str, str, str, str]:
    """``(scheme, credentials, hosts and path, query)`` of a connection string."""
    scheme, _, rest = uri.partition("://")
    rest, _, query = rest.partition("?")
    credentials, _, hosts = rest.rpartition("@")
    return scheme, credentials, hosts, query


def mask_uri(uri: str) -> str:
    """Return ``uri`` with its password and secret-bearing options replaced by ``***``.

    Options whose names mention a password, secret or token, and
    ``authMechanismProperties`` (which can carry ``AWS_SESSION_TOKEN``), are
    masked whole.
    """
    if "://" not in uri:
        return uri
    scheme, credentials, hosts, query = _split(uri)
    if ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    masked = f"{scheme}://{credentials}@{hosts}" if credentials else f"{scheme}://{hosts}"
    if not query:
        return masked
    parts = []
    for item in re.split(r"[&;]", query):
        name, eq, _ = item.partition("=")
        parts.append(f"{name}=***" if eq and _SECRET_OPTION.search(name) else item)
    return masked + "?" + "&".join(parts)


def _secrets_of(uri: str, options: Mapping[str, Any]) -> list[str]:
    """The secret strings in ``uri`` and ``options``, longest first."""
    found = [str(v) for k, v in options.items() if _SECRET_OPTION.search(k) and v]
    if "://" in uri:
        _, credentials, _, query = _split(uri)
        if ":" in credentials:
            found.append(credentials.split(":", 1)[1])
        for item in re.split(r"[&;]", query):
            name, eq, value = item.partition("=")
            if eq and value and _SECRET_OPTION.search(name):
                found.append(value)
    return sorted({s for s in found if s}, key=len, reverse=True)


def mask_text(text: str, uri: str, options: Mapping[str, Any] | None = None) -> str:
    """Return ``text`` with every secret of ``uri`` and ``options`` replaced by ``***``."""
    for secret in _secrets_of(uri, options or {}):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
        else:  # a very short secret would garble the words it occurs in: mask it as a word
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
    return text


def _uri_options(uri: str) -> list[str]:
    """The names of the options in ``uri``'s query."""
    return [item.partition("=")[0] for item in re.split(r"[&;]", _split(uri)[3]) if item]


def client_options(options: Mapping[str, Any] | None, uri: str = "") -> dict[str, Any]:
    """The defaults overlaid with ``options``, names compared without case as pymongo does.

    A default is left out when ``uri`` sets that option itself, so a timeout
    written in the connection string is kept.
    """
    given = dict(options or {})
    in_uri = set(_uri_options(uri))
    lowered = {name.lower() for name in (*given, *in_uri)}
    defaults = {k: v for k, v in DEFAULT_CONNECTION_OPTIONS.items() if k.lower() not in lowered}
    return {**defaults, **given}


def new_client(uri: str, options: Mapping[str, Any], kind: type[Any] = MongoClient) -> Any:
    """A client of class ``kind`` (``MongoClient`` or ``AsyncMongoClient``) that has not connected.

    Option values may be strings (from ``.ini`` files): pymongo converts
    each by its own type. Raises :class:`ConfigurationError` with pymongo's
    reason, secrets masked, for anything pymongo refuses.
    """
    if not isinstance(uri, str) or not re.match(r"mongodb(\+srv)?://", uri):
        raise ConfigurationError(
            f"invalid URI {mask_uri(str(uri))!r}: it must begin with mongodb:// or mongodb+srv://"
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            client = kind(uri, **{**options, "connect": False})
    except (PyMongoError, ValueError, TypeError, OSError) as exc:
        what = "invalid URI" if isinstance(exc, InvalidURI) else "invalid connection option"
        raise ConfigurationError(
            f"{what} for {mask_uri(uri)!r}: {mask_text(str(exc), uri, options)}"
        ) from None
    for warning in caught:
        text = str(warning.message)
        if _BAD_URI_OPTION.search(text):
            # pymongo only warns about an unknown or malformed URI option; a typo must not pass.
            # (The client has not connected, so there is nothing to close.)
            unknown = [name for name in _uri_options(uri) if name.lower() not in _KNOWN_OPTIONS]
            named = f" (unknown: {', '.join(unknown)})" if unknown else ""
            raise ConfigurationError(
                f"invalid URI {mask_uri(uri)!r}{named}: {mask_text(text, uri, options)}"
            )
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return client


def open_collection(client: Any, database: str, collection: str) -> Any:
    """``client[database][collection]``, with pymongo's name checks and MongoDB's limits.

    MongoDB refuses a database name of 64 bytes or more, a collection in the
    reserved ``system.`` namespace, and a namespace (``database.collection``)
    over 255 bytes; each is refused here, before anything is sent.
    """
    try:
        found = client[database][collection]
    except (InvalidName, TypeError) as exc:
        raise ConfigurationError(f"invalid database or collection name: {exc}") from None
    if len(database.encode("utf-8")) >= 64:
        raise ConfigurationError("invalid database name: MongoDB takes at most 63 bytes")
    if collection.startswith("system."):
        raise ConfigurationError("invalid collection name: system. names are MongoDB's own")
    if len(f"{database}.{collection}".encode()) > 255:
        raise ConfigurationError(
            "invalid collection name: database and collection together are over 255 bytes"
        )
    return found


def translate(exc: Exception) -> MongoSessionError:
    """Map a pymongo error to this package's errors, without its message.

    Server messages can quote keys or values, so only the error class and
    code are kept.
    """
    if isinstance(exc, UnicodeEncodeError):
        return SerializationError("a string in the value is not valid Unicode (a lone surrogate?)")
    if isinstance(exc, OverflowError):
        return SerializationError("the serializer returned an integer beyond 64 bits")
    code = getattr(exc, "code", None)
    if isinstance(exc, BulkWriteError):
        codes = {e.get("code") for e in exc.details.get("writeErrors", [])}
        code = next(iter(codes), code)
    if isinstance(exc, DocumentTooLarge) or code in _TOO_LARGE_CODES:
        return ValueTooLarge("the document exceeds MongoDB's 16 MB limit; nothing was written")
    if isinstance(exc, InvalidDocument):
        return SerializationError("the serialized value is not a valid BSON document")
    if isinstance(exc, (PyMongoConfigurationError, InvalidName)):
        # A DNS or driver reason (no SRV record, a missing auth package): no data in it.
        return ConfigurationError(f"MongoDB client configuration: {exc}")
    if code == 73:  # InvalidNamespace
        return ConfigurationError(
            "MongoDB refused the database or collection name (InvalidNamespace)"
        )
    unavailable = (ConnectionFailure, WaitQueueTimeoutError)
    if isinstance(exc, unavailable) or getattr(exc, "timeout", False) or code in _UNAVAILABLE_CODES:
        return ServerUnavailable(f"MongoDB is unavailable ({type(exc).__name__})")
    return OperationError(
        f"MongoDB refused the operation ({type(exc).__name__}, code {code})", code
    )


def translated(fn: Callable[P, R]) -> Callable[P, R]:
    """Raise this package's errors in place of pymongo's from ``fn``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (PyMongoError, InvalidDocument, UnicodeEncodeError) as exc:
            raise translate(exc) from None

    return wrapper


class Preparation:
    """Whether a collection's indexes are ready, and when to try again after a failure.

    Shared by every view of a manager. Holds no lock during I/O: callers
    that find the collection unprepared each prepare it, within their own
    timeouts, rather than queue behind one another.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ready = False
        self.retry_at = 0.0  # monotonic time before which preparing is not tried again
        self._wait = RETRY_WAIT[0]

    def due(self) -> bool:
        """Whether the next operation should prepare the collection."""
        return not self.ready and time.monotonic() >= self.retry_at

    def succeeded(self) -> None:
        with self._lock:
            self.ready = True
            self._wait = RETRY_WAIT[0]

    def reset(self) -> None:
        with self._lock:
            self.ready = False

    def failed(
        self, error: MongoSessionError, on_error: Callable[[BaseException], Any] | None
    ) -> None:
        """Report a failed preparation: raise ``error``, or hand it to ``on_error``.

        Without ``on_error`` the operation raises and the next one tries
        again. With it, the operation goes on (unless MongoDB is
        unreachable) and preparing is tried again after 1 s, doubling up to
        60 s.
        """
        log.warning("could not prepare the collection (its indexes): %s", type(error).__name__)
        if on_error is None:
            raise error
        with self._lock:
            self.retry_at = time.monotonic() + self._wait
            self._wait = min(self._wait * 2, RETRY_WAIT[1])
        on_error(error)
        if isinstance(error, ServerUnavailable):
            raise error  # the operation itself could not succeed either
