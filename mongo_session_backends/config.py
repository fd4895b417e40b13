"""Turn settings from ``.ini`` files (raw strings) into typed options.

Shared by the Beaker and Pyramid adapters and the command line. A secret or
the connection string given as ``env:NAME`` is read from the environment
variable ``NAME``, so secrets stay out of configuration files.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

from .exceptions import ConfigurationError

__all__ = [
    "MANAGER_SETTINGS",
    "as_bool",
    "as_int",
    "as_list",
    "as_optional_int",
    "as_seconds",
    "as_secret",
    "as_str",
    "as_uri",
    "coerce",
    "manager_options",
]


class _Invalid(ValueError):
    """A coercion failure whose message is safe to show (it has no value)."""


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", ""}


def unknown_options(names: Any, known: Any, where: str) -> ConfigurationError:
    """The error for options not in ``known``, with a "did you mean" where one is close.

    :param where: what they were given to, for the message ("the cachelib adapter").
    """
    unknown = sorted(names)
    hints = [m for name in unknown for m in difflib.get_close_matches(name, known, 1)]
    hint = f"; did you mean {', '.join(hints)}?" if hints else ""
    return ConfigurationError(f"unknown option {', '.join(unknown)} for {where}{hint}")


def as_bool(value: Any) -> bool:
    """``true/yes/on/1`` or ``false/no/off/0`` (any case), or a bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Invalid("expected true or false")


def as_int(value: Any) -> int:
    """An integer, or a string of one."""
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise _Invalid("expected an integer") from None


def as_seconds(value: Any) -> float | None:
    """Seconds as a number or a ``timedelta``; ``None``/``"none"`` stays ``None``.

    Refuses negative, infinite and NaN values. Whole numbers come back as ``int``.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    except (TypeError, ValueError, AttributeError):
        raise _Invalid("expected seconds") from None
    if not math.isfinite(number):
        raise _Invalid("expected a finite number of seconds")
    if number < 0:
        raise _Invalid("must not be negative")
    return int(number) if number.is_integer() else number


def as_secret(value: Any) -> str | bytes:
    """A secret; ``env:NAME`` reads the environment variable ``NAME``."""
    if isinstance(value, bytes):
        return value
    text = str(value).strip()
    if text.startswith("env:"):
        name = text[4:]
        if name not in os.environ:
            raise _Invalid(f"environment variable {name} is not set")
        return os.environ[name]
    return text


def as_list(value: Any) -> list[Any]:
    """A list, or a string split on commas and whitespace."""
    if isinstance(value, str):
        return [item for item in value.replace(",", " ").split() if item]
    return list(value)


def _secrets(value: Any) -> list[str | bytes]:
    return [as_secret(item) for item in as_list(value)]


def as_str(value: Any) -> str:
    """A string, without surrounding white space."""
    if not isinstance(value, str):
        raise _Invalid("expected a string")
    return value.strip()


def as_optional_int(value: Any) -> int | None:
    """An integer, or ``None``/``"none"``."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        return None
    return as_int(value)


def as_uri(value: Any) -> str:
    """A connection string; ``env:NAME`` reads it from the environment, password and all."""
    return str(as_secret(value))


def _name_or_object(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _callable(value: Any) -> Any:
    if not callable(value):
        raise _Invalid("expected a callable (a Python-only option)")
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Invalid("expected a mapping")
    return value


#: The manager options that settings may give, with their coercions.
MANAGER_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "uri": as_uri,
    "url": as_uri,
    "database_name": as_str,
    "collection": as_str,
    "expires": as_seconds,
    "expires_key": as_str,
    "id_field": as_str,
    "expire_after_seconds": as_int,
    "cleanup": as_str,
    "serializer": _name_or_object,
    "serializer_secret": as_secret,
    "encryption_keys": _secrets,
    "hash_ids": as_bool,
    "id_secret": as_secret,
    "incr_mode": as_str,
    "prefix": as_str,
    "read_preference": as_str,
    "owner_key": as_str,
    "on_error": _callable,
    "clock": _callable,
}


def coerce(name: str, value: Any, coercion: Callable[[Any], Any]) -> Any:
    """``coercion(value)``, or :class:`ConfigurationError` naming the option ``name``.

    The same check for a Python keyword and an ``.ini`` string.
    """
    try:
        return coercion(value)
    except _Invalid as exc:
        raise ConfigurationError(f"option {name!r} is malformed: {exc}") from None
    except (TypeError, ValueError, AttributeError):
        raise ConfigurationError(f"option {name!r} is malformed") from None


def manager_options(
    settings: Mapping[str, Any],
    extra: Mapping[str, Callable[[Any], Any]] | None = None,
    ignore: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split and coerce settings into manager options and adapter options.

    :param settings: names without their prefix (``collection``, not
        ``session.collection``) mapped to raw or typed values.
        ``connection_options.NAME`` entries are collected into
        ``connection_options``; ``url`` is an alias of ``uri``.
    :param extra: the adapter's own settings, with their coercions.
    :param ignore: names accepted and dropped.
    :returns: ``(manager options, adapter options)``.
    :raises ConfigurationError: for an unknown or malformed setting. The
        message names the setting, never its value.
    """
    extra = extra or {}
    manager: dict[str, Any] = {}
    adapter: dict[str, Any] = {}
    connection: dict[str, Any] = {}
    for name, value in settings.items():
        if name in ignore:
            continue
        if name.startswith("connection_options."):
            # Kept as given: pymongo converts each option by its own type.
            connection[name.partition(".")[2]] = value
        elif name == "connection_options":
            connection.update(coerce(name, value, _mapping))
        elif name in MANAGER_SETTINGS:
            manager["uri" if name == "url" else name] = coerce(name, value, MANAGER_SETTINGS[name])
        elif name in extra:
            adapter[name] = coerce(name, value, extra[name])
        else:
            known = sorted({*MANAGER_SETTINGS, *extra, "connection_options.*"})
            hint = difflib.get_close_matches(name, known, 1)
            raise ConfigurationError(
                f"unknown setting {name!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else "")
                + f" Known settings: {', '.join(known)}"
            )
    if connection:
        manager["connection_options"] = connection
    return manager, adapter
