"""The ``mongo-sessions`` command (also ``python -m mongo_session_backends``).

Every command builds one :class:`~mongo_session_backends.MongoManager` from
the command line and, with ``--config``, from the application's own
``.ini`` settings, coerced exactly as the application coerces them. The
maintenance commands act on the whole collection; ``sessions`` and
``revoke`` act on the sessions of one owner under the application's key
prefix.
"""

from __future__ import annotations

import argparse
import atexit
import configparser
import datetime as dt
import importlib
import inspect
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from . import __version__
from .config import MANAGER_SETTINGS, manager_options
from .exceptions import ConfigurationError, MongoSessionError, ServerUnavailable
from .manager import FAR_FUTURE, READ_PREFERENCES, MongoManager, mask_uri

__all__ = ["main"]

MakeManager = Callable[[argparse.Namespace], MongoManager]

#: Command-line destinations and the manager options they set.
_MANAGER_OPTIONS = {
    "database": "database_name",
    "collection": "collection",
    "expires": "expires",
    "expires_key": "expires_key",
    "id_field": "id_field",
    "expire_after_seconds": "expire_after_seconds",
    "cleanup": "cleanup",
    "serializer": "serializer",
    "serializer_secret": "serializer_secret",
    "encryption_keys": "encryption_keys",
    "hash_ids": "hash_ids",
    "id_secret": "id_secret",
    "key_prefix": "prefix",
    "incr_mode": "incr_mode",
    "read_preference": "read_preference",
    "owner_key": "owner_key",
}
#: The commands that act on the sessions of one owner, under the application's key prefix.
_OWNER_COMMANDS = ("sessions", "revoke")
#: Every Beaker namespace's prefix (``beaker:LENGTH:NAME:``) starts with this.
_BEAKER_NAMESPACES = "beaker:"
#: The settings prefixes ``--config`` looks for, in the order they are named.
_PREFIXES = ("mongo_sessions.", "session.", "cache.", "beaker.session.", "beaker.cache.")
_BEAKER_PREFIXES = ("session.", "cache.", "beaker.session.", "beaker.cache.")
_MAX_TIMEOUT = 1_000_000  # seconds; pymongo refuses a billion milliseconds


class _Parser(argparse.ArgumentParser):
    """Reports a usage mistake on one line, without the usage text."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def _typed(coerce: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """An argparse type from a settings coercion; its message never shows the value."""

    def convert(text: str) -> Any:
        try:
            return coerce(text)
        except (ValueError, TypeError) as exc:
            raise argparse.ArgumentTypeError(str(exc) or "malformed value") from None

    convert.__name__ = name
    return convert


def _setting(name: str) -> Callable[[str], Any]:
    return _typed(MANAGER_SETTINGS[name], name)


def _timeout(text: str) -> float:
    seconds = float(text)
    if not (math.isfinite(seconds) and 0 < seconds <= _MAX_TIMEOUT):
        raise ValueError(f"expected seconds above 0, at most {_MAX_TIMEOUT:,}")
    return seconds


def _positive_int(text: str) -> int:
    number = int(text)
    if number < 1:
        raise ValueError("expected a positive integer")
    return number


def _not_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("expected a non-empty value")
    return text


def _name_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError("expected NAME=VALUE")
    return name.strip(), value


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--uri",
        type=_setting("uri"),
        help="MongoDB connection string; env:NAME reads it from the environment variable "
        "NAME (default: the --config file's, else mongodb://127.0.0.1:27017)",
    )
    group.add_argument(
        "--database",
        metavar="NAME",
        help="database (default: the --config file's, else the URI's, else 'sessions')",
    )
    group.add_argument(
        "--collection",
        metavar="NAME",
        help="collection (default: the --config file's, else 'sessions')",
    )
    group.add_argument(
        "--timeout",
        type=_typed(_timeout, "seconds"),
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for MongoDB to answer (default 5); the work itself has no "
        "time limit",
    )
    group.add_argument(
        "--connection-option",
        type=_typed(_name_value, "NAME=VALUE"),
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a MongoClient option, such as tls=true or w=majority; repeat for more",
    )


def _manager_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "manager options",
        "The application's MongoManager options; each overrides --config. The maintenance "
        "commands act on the whole collection: the options that change how keys and values "
        "are stored are only checked there.",
    )
    add = group.add_argument
    add(
        "--expires",
        type=_setting("expires"),
        metavar="SECONDS",
        help="default lifetime of an entry; 0 or none for never (default 14 days)",
    )
    add(
        "--expires-key",
        type=_setting("expires_key"),
        metavar="FIELD",
        help="the field holding the expiry (default 'expires')",
    )
    add(
        "--id-field",
        type=_setting("id_field"),
        metavar="FIELD",
        help="the field holding the key (default '_id')",
    )
    add(
        "--expire-after-seconds",
        type=_setting("expire_after_seconds"),
        metavar="SECONDS",
        help="the TTL index's grace period (default 0)",
    )
    add(
        "--cleanup",
        choices=("ttl", "cosmos", "none"),
        help="ttl: a TTL index on the expiry field (default); cosmos: a TTL index on _ts "
        "after --expires; none: no TTL index",
    )
    add(
        "--serializer",
        choices=("native", "json", "pickle"),
        help="how values are stored (default native)",
    )
    add(
        "--serializer-secret",
        type=_setting("serializer_secret"),
        metavar="SECRET",
        help="the pickle serializer's signing secret, or env:NAME",
    )
    add(
        "--encryption-keys",
        type=_setting("encryption_keys"),
        metavar="KEYS",
        help="comma-separated encryption keys, each may be env:NAME",
    )
    add(
        "--hash-ids",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keys are stored as HMACs (default no)",
    )
    add(
        "--id-secret",
        type=_setting("id_secret"),
        metavar="SECRET",
        help="the HMAC key for --hash-ids, or env:NAME",
    )
    add(
        "--key-prefix",
        metavar="PREFIX",
        help="prepended to every key (default none); for sessions and revoke, the "
        "--config adapter's own prefix follows it",
    )
    add(
        "--incr-mode",
        choices=("find_and_modify", "update_and_read"),
        help="how incr runs (default find_and_modify)",
    )
    add(
        "--read-preference",
        choices=tuple(READ_PREFERENCES),
        help="where reads go (default primary)",
    )
    add(
        "--owner-key",
        type=_setting("owner_key"),
        metavar="KEY",
        help="the session key holding the logged-in user's id; stats and ensure-indexes "
        "then expect its index (default none)",
    )


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings file")
    group.add_argument(
        "--config",
        metavar="FILE",
        help="read the application's settings from this .ini file (mongo_sessions.* for "
        "Pyramid, session.* or cache.* for Beaker)",
    )
    group.add_argument("--section", help="the file's section (default app:main)")
    group.add_argument(
        "--prefix",
        help="the settings' prefix, such as mongo_sessions. or session. (default: the one "
        "the section has)",
    )


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on the terminal")


def _command(
    commands: Any, name: str, summary: str, description: str, *, progress: bool = True
) -> argparse.ArgumentParser:
    """A command that reads the application's configuration; ``progress``: it has ``--quiet``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=description
    )
    _connection_arguments(parser)
    _config_arguments(parser)
    _manager_arguments(parser)
    if progress:
        _output_arguments(parser)
    return parser


def _owner_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--owner",
        required=True,
        type=_typed(_not_empty, "user id"),
        metavar="USER_ID",
        help="the user id the sessions belong to, as the application stores it under owner_key",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mongo-sessions",
        description="MongoDB sessions and caches for Python web apps: a demo, the "
        "maintenance of a session collection, and the sessions of a user.",
        epilog="Run 'mongo-sessions COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="serve a demo web app that keeps its sessions in MongoDB",
        description="Serve a small web app whose sessions live in MongoDB. Without --uri "
        "it starts the embedded MongoDB-compatible server itself.",
    )
    _connection_arguments(demo)
    _manager_arguments(demo)
    demo.add_argument("--framework", choices=("flask", "pyramid", "beaker"), default="flask",
                      help="the adapter to demonstrate (default flask)")  # fmt: skip
    demo.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")

    stats = _command(
        commands,
        "stats",
        "entry counts, document sizes and index problems",
        "Report the database and collection read, the live and expired entries, the "
        "documents' sizes, the indexes, and how they differ from what the configuration "
        "needs. It only reads.",
    )
    stats.add_argument("--json", action="store_true", help="print JSON (sizes in bytes)")
    _command(
        commands,
        "ensure-indexes",
        "create or fix the indexes",
        "Create the indexes the configuration needs and fix a TTL index's period, for "
        "deployments whose application user may not create indexes.",
    )
    purge = _command(
        commands,
        "purge-expired",
        "delete expired entries now",
        "Delete the expired entries in batches, for cleanup=none deployments and Azure "
        "Cosmos DB. An entry refreshed meanwhile is kept.",
    )
    purge.add_argument(
        "--batch-size",
        type=_typed(_positive_int, "count"),
        default=1000,
        metavar="COUNT",
        help="entries deleted per command (default 1000)",
    )
    sessions = _command(
        commands,
        "sessions",
        "list the live sessions of a user",
        "List the live sessions of one user: each one's handle, when it was created, last "
        "written and when it expires. Only sessions written with owner_key set have an owner. "
        "It only reads.",
        progress=False,
    )
    _owner_argument(sessions)
    sessions.add_argument("--json", action="store_true", help="print JSON (ISO 8601 times)")
    revoke = _command(
        commands,
        "revoke",
        "end every session of a user, or one",
        "End every session of one user (after a password change, a ban, a stolen account), "
        "or the one named by --handle. On a terminal it asks first; elsewhere it needs --yes.",
        progress=False,
    )
    _owner_argument(revoke)
    revoke.add_argument(
        "--handle",
        type=_typed(_not_empty, "handle"),
        help="revoke only this session, a handle that the sessions command lists",
    )
    revoke.add_argument("-y", "--yes", action="store_true", help="revoke without asking")
    return parser


# -- settings -------------------------------------------------------------


def _error_line(exc: configparser.Error) -> str:
    line = getattr(exc, "lineno", None)
    errors = getattr(exc, "errors", None)
    if line is None and errors:
        line = errors[0][0]
    return "" if line is None else f" at line {line}"


def _read_section(path: str, section: str) -> configparser.SectionProxy:
    here = os.path.dirname(os.path.abspath(path))
    # As PasteDeploy reads it: %(here)s interpolation, keys keep their case.
    parser = configparser.ConfigParser(defaults={"here": here, "__file__": os.path.abspath(path)})
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        with open(path, encoding="utf-8") as file:
            parser.read_file(file)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        # The parser's own message quotes the line, which may hold a secret.
        where = _error_line(exc) if isinstance(exc, configparser.Error) else ""
        raise ConfigurationError(f"cannot parse {path}{where}: {type(exc).__name__}") from None
    if not parser.has_section(section):
        found = ", ".join(f"[{name}]" for name in parser.sections()) or "none"
        raise ConfigurationError(
            f"{path} has no [{section}] section (sections: {found}); choose one with --section"
        )
    return parser[section]


def _choose_prefix(section: configparser.SectionProxy, where: str) -> str:
    def used(prefix: str) -> bool:
        if not any(key.startswith(prefix) for key in section):
            return False
        # A Beaker section whose type names another backend is not ours.
        kind = section.get(prefix + "type", "mongodb", raw=True).strip()
        return prefix not in _BEAKER_PREFIXES or kind == "mongodb"

    found = [prefix for prefix in _PREFIXES if used(prefix)]
    if not found:
        names = ", ".join(prefix + "*" for prefix in _PREFIXES)
        raise ConfigurationError(f"{where} has none of the settings {names}")
    if len(found) > 1:
        names = " and ".join(prefix + "*" for prefix in found)
        raise ConfigurationError(f"{where} has both {names} settings; choose with --prefix")
    return found[0]


def _adapter(module: str, prefix: str) -> Any:
    """The adapter ``module`` (``beaker`` or ``pyramid``) that reads ``prefix`` settings."""
    try:
        return importlib.import_module(f"{__package__}.{module}")
    except ImportError:
        raise ConfigurationError(
            f"reading {prefix}* settings needs {module.capitalize()}: "
            f"pip install 'mongo-session-backends[{module}]'"
        ) from None


def _file_options(path: str, section_name: str, prefix: str | None) -> tuple[dict[str, Any], str]:
    """The manager options the application reads from ``section_name`` of ``path``.

    Also returns the key prefix its sessions are under, after the manager's
    prefix: Pyramid's ``key_prefix``, or the one every Beaker namespace
    starts with.
    """
    section = _read_section(path, section_name)
    where = f"{path} [{section_name}]"
    if prefix is None:
        prefix = _choose_prefix(section, where)
    elif not prefix.endswith("."):
        prefix += "."
    settings: dict[str, Any] = {}
    for key in section:
        if key.startswith(prefix):
            try:
                settings[key[len(prefix) :]] = section[key]
            except configparser.InterpolationError:
                raise ConfigurationError(
                    f"{where}: bad %-interpolation in {key}; write %% for a literal %"
                ) from None
    if not settings:
        raise ConfigurationError(f"{where} has no {prefix}* settings")
    # A Beaker cache's region settings (cache.REGION.*) are the region's own.
    regions = set(settings.get("regions", "").replace(",", " ").split())
    settings = {k: v for k, v in settings.items() if k.partition(".")[0] not in regions}
    beaker = prefix.startswith(_BEAKER_PREFIXES)
    adapter = _adapter("beaker" if beaker else "pyramid", prefix)
    ignored = frozenset(adapter.BEAKER_OPTIONS) if beaker else frozenset()
    # Adapter settings are known (not typos); only the key prefix is used and coerced.
    keep: dict[str, Callable[[Any], Any]] = {
        name: (lambda value: value) for name in adapter.ADAPTER_SETTINGS
    }
    if not beaker:
        keep["key_prefix"] = adapter.ADAPTER_SETTINGS["key_prefix"]
    try:
        options, own = manager_options(settings, keep, ignored)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}, prefix {prefix}: {exc}") from None
    if beaker:
        return options, _BEAKER_NAMESPACES
    default = inspect.signature(adapter.MongoSessionFactory).parameters["key_prefix"].default
    return options, str(own.get("key_prefix", default))


def _manager(args: argparse.Namespace) -> MongoManager:
    """The manager that ``args`` (and its ``--config`` file) describe.

    For ``sessions`` and ``revoke`` its prefix is the one the application's
    sessions are under: the manager's prefix followed by the adapter's.
    """
    config = getattr(args, "config", None)
    options, nested = (
        _file_options(config, args.section or "app:main", args.prefix) if config else ({}, "")
    )
    for dest, name in _MANAGER_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is not None:
            options[name] = value
    if args.command in _OWNER_COMMANDS:
        if nested == _BEAKER_NAMESPACES and options.get("hash_ids"):
            raise ConfigurationError(
                f"{args.command} cannot reach Beaker's sessions with hash_ids: each is under "
                "a namespace prefix of its own (beaker:LENGTH:ID:), and a hashed prefix "
                "matches only itself"
            )
        options["prefix"] = options.get("prefix", "") + nested
    if args.uri is not None:
        options["uri"] = args.uri
    # Maintenance may scan a large collection: a bounded wait for the server,
    # no limit on the work itself.
    wait = int(args.timeout * 1000)
    timeouts = {"serverSelectionTimeoutMS": wait, "connectTimeoutMS": wait, "socketTimeoutMS": 0}
    given = {f"connection_options.{name}": value for name, value in args.connection_option}
    connection = _overlay(options.get("connection_options", {}), timeouts)
    connection = _overlay(connection, manager_options(given)[0].get("connection_options", {}))
    options["connection_options"] = connection
    return MongoManager(**options)


def _overlay(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``over``, option names compared without case as pymongo does."""
    names = {name.lower() for name in over}
    return {**{k: v for k, v in base.items() if k.lower() not in names}, **over}


# -- output -------------------------------------------------------------


class _Status:
    """One status line on stderr, redrawn in place; silent unless stderr is a terminal."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.enabled = not getattr(args, "quiet", False) and sys.stderr.isatty()
        self.shown = False
        self.last = 0.0

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if not self.enabled or (self.shown and now - self.last < 0.1):
            return
        try:
            width = os.get_terminal_size(sys.stderr.fileno()).columns or 80
        except OSError:
            width = 80
        sys.stderr.write("\r\x1b[K" + text[: max(width - 1, 20)])
        sys.stderr.flush()
        self.shown, self.last = True, now

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False


def _size(count: int) -> str:
    """``count`` bytes, with a binary unit beside the exact figure when it helps."""
    text = f"{count:,} byte" + ("" if count == 1 else "s")
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return text if count < 1024 else f"{text} ({value:.1f} {unit})"
    return text  # pragma: no cover


def _place(manager: MongoManager) -> str:
    return f"{manager.database_name}.{manager.collection_name}"


def _stats(args: argparse.Namespace, make: MakeManager) -> int:
    manager = make(args)
    status = _Status(args)
    try:
        result = manager.stats(progress=lambda text: status(f"stats of {_place(manager)}: {text}"))
    finally:
        status.clear()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    problems = result["index_problems"]
    lines = [
        f"database: {result['database']}",
        f"collection: {result['collection']}",
        f"live: {result['live']:,}",
        f"revoked: {result['revoked']:,}",
        f"expired: {result['expired']:,}",
        f"documents: {result['documents']:,}",
        f"total size: {_size(result['total_size'])}",
        f"average size: {_size(result['average_size'])}",
        f"largest size: {_size(result['largest_size'])}",
        f"indexes: {', '.join(result['indexes']) or 'none'}",
        "index problems: " + ("none" if not problems else ""),
        *(f"  {problem}" for problem in problems),
    ]
    print("\n".join(line.rstrip() for line in lines))
    return 0


def _ensure_indexes(args: argparse.Namespace, make: MakeManager) -> int:
    manager = make(args)
    status = _Status(args)
    status(f"checking the indexes of {_place(manager)}")
    try:
        done = manager.ensure_indexes()
    finally:
        status.clear()
    for line in done or ["indexes are already in place"]:
        print(f"{_place(manager)}: {line}")
    return 0


def _purge_expired(args: argparse.Namespace, make: MakeManager) -> int:
    manager = make(args)
    status = _Status(args)

    def progress(deleted: int) -> None:
        status(f"purging {_place(manager)}: {deleted:,} expired entries deleted so far")

    try:
        deleted = manager.purge_expired(batch_size=args.batch_size, progress=progress)
    finally:
        status.clear()
    noun = "entry" if deleted == 1 else "entries"
    print(f"deleted {deleted:,} expired {noun} from {_place(manager)}")
    return 0


def _where(manager: MongoManager) -> str:
    """The collection, and the prefix if there is one."""
    prefix = f" (prefix {manager.prefix!r})" if manager.prefix else ""
    return _place(manager) + prefix


def _sessions_of(owner: str, count: int) -> str:
    return f"{count:,} session{'' if count == 1 else 's'} of {owner}"


def _time(moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    if moment >= FAR_FUTURE:
        return "never"
    return f"{moment.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


def _last_written(session: Mapping[str, Any]) -> tuple[bool, dt.datetime]:
    """The sort key of a session: its last write (or creation); sessions without times first."""
    moment = session["written"] or session["created"]
    return moment is not None, moment or FAR_FUTURE


def _sessions(args: argparse.Namespace, make: MakeManager) -> int:
    manager = make(args)
    found = sorted(manager.sessions(args.owner), key=_last_written, reverse=True)
    if args.json:
        times = ("created", "written", "expires")
        for session in found:
            session.update({k: session[k] and session[k].isoformat() for k in times})
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print(f"no live sessions of {args.owner} in {_where(manager)}")
        return 0
    print(f"{_sessions_of(args.owner, len(found))} in {_where(manager)}, last written first:")
    _print_table(found, sys.stdout)
    return 0


def _print_table(found: list[dict[str, Any]], out: Any) -> None:
    """The sessions as a table: handle, created, last written, expires."""
    rows = [("handle", "created", "last written", "expires")]
    rows += [
        (s["handle"] or "-", _time(s["created"]), _time(s["written"]), _time(s["expires"]))
        for s in found
    ]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip(), file=out)


def _no_handle(owner: str, handle: str, manager: MongoManager) -> str:
    return f"no live session of {owner} has the handle {handle} in {_where(manager)}"


def _confirm(question: str) -> bool:
    """Ask ``question`` on the terminal; only y or yes agrees."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _revoke(args: argparse.Namespace, make: MakeManager) -> int:
    ask = not args.yes
    if ask and not sys.stdin.isatty():
        return _fail("revoke asks for confirmation, and stdin is not a terminal: add --yes", 2)
    manager = make(args)
    owner, handle = args.owner, args.handle
    if ask:
        found = sorted(manager.sessions(owner), key=_last_written, reverse=True)
        if handle is not None:
            found = [s for s in found if s["handle"] == handle]
            if not found:
                return _fail(_no_handle(owner, handle, manager), 1)
        if not found:
            print(f"no live sessions of {owner} in {_where(manager)}: nothing revoked")
            return 0
        live = [s["handle"] for s in found]
        _print_table(found, sys.stderr)  # what the question is about
        if not _confirm(f"revoke {_sessions_of(owner, len(live))} in {_where(manager)}?"):
            return _fail("not confirmed: nothing revoked", 1)
    if handle is None:
        count = manager.revoke(owner)
    elif manager.revoke_handle(owner, handle):
        count = 1
    else:
        return _fail(_no_handle(owner, handle, manager), 1)
    print(f"revoked {_sessions_of(owner, count)} in {_where(manager)}")
    return 0


def _demo(args: argparse.Namespace, make: MakeManager) -> int:
    from .demo import run

    return run(args, make)


# -- running ----------------------------------------------------------------


def _exit_without_waiting() -> None:
    """Let the process end without pymongo's exit-time wait.

    pymongo's exit handler joins the background threads of every client,
    and each sleeps in steps of half a second before it looks at its stop
    flag, so a closed client still delayed the exit by up to 0.5 s. Once our
    own clients are closed nothing remains for it to do.
    """
    for name in ("pymongo.synchronous.monitor", "pymongo.monitor"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        handler = getattr(module, "_shutdown_resources", None)
        if handler is not None:
            atexit.unregister(handler)
        return


def _fail(message: object, status: int) -> int:
    print("error: " + " ".join(str(message).split()), file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    :param argv: the arguments. Default ``None``: ``sys.argv[1:]``, and the
        process is the command itself, so it exits as soon as the command's
        clients are closed.

    Mistakes are reported on one line of stderr: status 2 for usage and
    an unreachable server, 1 for other errors.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command != "demo" and args.config is None and (args.section or args.prefix):
        parser.error("--section and --prefix need --config")
    handlers: dict[str, Callable[[argparse.Namespace, MakeManager], int]] = {
        "demo": _demo,
        "stats": _stats,
        "ensure-indexes": _ensure_indexes,
        "purge-expired": _purge_expired,
        "sessions": _sessions,
        "revoke": _revoke,
    }
    opened: list[MongoManager] = []

    def make(namespace: argparse.Namespace) -> MongoManager:
        manager = _manager(namespace)
        opened.append(manager)
        return manager

    library_log = logging.getLogger("mongo_session_backends")
    level = library_log.level
    try:
        if args.command != "demo":
            # A failure is said once, on one line, by this command, not again by the log.
            library_log.setLevel(logging.ERROR)
        return handlers[args.command](args, make)
    except ServerUnavailable as exc:
        where = mask_uri(opened[-1].uri) if opened else "the configured URI"
        return _fail(f"cannot reach MongoDB at {where}: {exc}", 2)
    except MongoSessionError as exc:
        return _fail(exc, 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    finally:
        library_log.setLevel(level)
        for manager in opened:
            manager.close()
        if argv is None:
            _exit_without_waiting()
