"""What every framework adapter shares: its store and its outage policy.

An adapter's *store* is a view of a :class:`~mongo_session_backends.MongoManager`
under the adapter's key prefix, nested under the manager's own prefix. Its
*outage policy* decides what an operation does while MongoDB is unreachable:
raise :class:`~mongo_session_backends.ServerUnavailable`, or log a warning
and return a fallback. Only an outage is ever tolerated; every other error
(bad input, bad configuration, a closed manager, a refused command) raises.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from .codec import FROM_VALUE
from .config import unknown_options
from .exceptions import ConfigurationError, ServerUnavailable
from .manager import OPTIONS, BaseManager

__all__ = [
    "OutagePolicy",
    "adapter_store",
    "logged_in",
    "once",
    "owner_in_json",
    "shared_manager",
]

log = logging.getLogger("mongo_session_backends")

_MANAGER_OPTIONS = OPTIONS
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
M = TypeVar("M", bound=BaseManager)


class OutagePolicy:
    """Runs store operations for an adapter, tolerating outages if asked.

    :param adapter: the adapter's name, for the warning.
    :param tolerate: return the fallback with a warning on an outage;
        otherwise raise :class:`~mongo_session_backends.ServerUnavailable`.
    """

    def __init__(self, adapter: str, tolerate: bool) -> None:
        self.adapter = adapter
        self.tolerate = tolerate

    def __repr__(self) -> str:
        return f"OutagePolicy({self.adapter!r}, tolerate={self.tolerate})"

    def run(
        self, fallback: T, operation: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R | T:
        """Return ``operation(*args, **kwargs)``, or ``fallback`` on a tolerated outage."""
        try:
            return operation(*args, **kwargs)
        except ServerUnavailable as exc:
            if not self.tolerate:
                raise
            name = getattr(operation, "__name__", "operation")
            log.warning("%s %s skipped: %s", self.adapter, name, exc)
            return fallback


def adapter_store(
    adapter: str,
    manager: M | None,
    options: Mapping[str, Any],
    prefix: str,
    *,
    kind: type[M],
    lifetime: str | None = None,
    build: Callable[[dict[str, Any]], M] | None = None,
) -> M:
    """The store of an adapter: ``manager`` (or one built from ``options``) under ``prefix``.

    :param adapter: the adapter's name, for messages.
    :param manager: a manager to share; its own prefix is kept and
        ``prefix`` nests under it.
    :param options: manager options; refused together with ``manager``, so
        no option is silently ignored.
    :param kind: the manager class the adapter runs on
        (:class:`~mongo_session_backends.MongoManager` or
        :class:`~mongo_session_backends.AsyncMongoManager`).
    :param lifetime: the adapter's own lifetime option, if it has one; then
        the manager option ``expires`` is refused in favour of it, except
        with ``cleanup="cosmos"``, where it sets the Cosmos DB TTL.
    :param build: makes the manager from ``options``. Default ``kind``.
    :raises ConfigurationError: for a conflict between the arguments.
    """
    unknown = set(options) - _MANAGER_OPTIONS
    if unknown:
        raise unknown_options(unknown, _MANAGER_OPTIONS, f"the {adapter} adapter")
    if lifetime is not None and "expires" in options and options.get("cleanup") != "cosmos":
        raise ConfigurationError(
            f"expires does not apply to the {adapter} adapter: set its {lifetime} instead "
            "(expires is accepted only with cleanup='cosmos', as the Cosmos DB TTL)"
        )
    if manager is not None:
        if options:
            names = ", ".join(sorted(options))
            raise ConfigurationError(
                f"pass either manager or manager options ({names}) to the {adapter} adapter, "
                "not both: options of a shared manager are set where it is made"
            )
        if not isinstance(manager, kind):
            raise ConfigurationError(f"manager must be an instance of {kind.__name__}")
        return manager.with_prefix(prefix)
    made = build(dict(options)) if build is not None else kind(**options)
    return made.with_prefix(prefix)


_shared: dict[Any, Any] = {}
_shared_lock = threading.RLock()  # an object made under it may make another


def once(key: Any, make: Callable[[], T]) -> T:
    """The process-wide object for ``key``, made by ``make`` the first time; thread-safe."""
    found = _shared.get(key)
    if found is None:
        with _shared_lock:
            found = _shared.get(key)
            if found is None:
                found = _shared[key] = make()
    return found


def shared_manager(kind: type[M]) -> Callable[[dict[str, Any]], M]:
    """A ``build`` for :func:`adapter_store`: one manager per process and configuration.

    Frameworks that make an adapter object per request or per thread
    (Beaker's namespaces, Django's backends) share one client (one
    connection pool) this way.
    """

    def build(options: dict[str, Any]) -> M:
        key = (kind, *sorted((k, id(v) if k == "client" else repr(v)) for k, v in options.items()))
        return once(key, lambda: kind(**options))

    return build


def owner_in_json(manager: BaseManager, data: bytes) -> Any:
    """The owner of a session a framework stored as JSON bytes, for ``owner_key``.

    Litestar's and starsessions' sessions reach their stores encoded; with
    their default (JSON) serializers the user id can still be read from
    them, so "log out everywhere" needs no extra command. Returns the value
    under the manager's ``owner_key`` (``None``: nobody logged in), or
    :data:`~mongo_session_backends.codec.FROM_VALUE` when the manager has no
    ``owner_key`` or the data is not a JSON object (the stored owner is then
    kept).
    """
    key = manager.owner_key
    if key is None:
        return FROM_VALUE
    try:
        session = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return FROM_VALUE
    return session.get(key) if isinstance(session, dict) else FROM_VALUE


def logged_in(manager: BaseManager, session: Mapping[str, Any], option: str) -> Any:
    """The user id in ``session`` for the log-out helpers, or ``None`` for nobody.

    :param option: how the adapter's users give ``owner_key``, for the
        message when ``manager`` has none.
    :raises ConfigurationError: if ``manager`` has no ``owner_key``.
    """
    if manager.owner_key is None:
        raise ConfigurationError(f"listing or ending a user's sessions needs {option}")
    return session.get(manager.owner_key)
