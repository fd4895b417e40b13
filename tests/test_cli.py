"""The mongo-sessions command and the demo, end to end."""

from __future__ import annotations

import argparse
import configparser
import datetime as dt
import http.cookiejar
import io
import json
import os
import pty
import re
import select
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

import mongo_session_backends.cli as cli
from mongo_session_backends import ManagerClosed, MongoManager, __version__
from mongo_session_backends.cli import main
from mongo_session_backends.embedded import free_port
from mongo_session_backends.manager import OPTIONS

COMMANDS = ("demo", "stats", "ensure-indexes", "purge-expired", "sessions", "revoke")
MAINTENANCE = ("stats", "ensure-indexes", "purge-expired")
#: The commands that act on one owner's sessions, with the arguments they need.
OWNER_COMMANDS = {"sessions": ["--owner", "alice"], "revoke": ["--owner", "alice", "--yes"]}
#: The manager options that cannot come from a command line (Python objects), or that
#: are connection options.
NOT_ON_THE_COMMAND_LINE = {"uri", "client", "connection_options", "on_error", "clock"}


@pytest.fixture
def cli_args(mongodb_uri: str, database_name: str) -> list[str]:
    return ["--uri", mongodb_uri, "--database", database_name]


def run(argv: list[str]) -> int:
    """``main(argv)``'s status, also when argparse exits."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mongo_session_backends", *args]


# -- help and version -------------------------------------------------------


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out
    for name in COMMANDS:
        assert run([name, "--help"]) == 0
        assert "--uri" in capsys.readouterr().out


def test_every_command_has_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    subcommands = next(
        action
        for action in cli._parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    assert set(subcommands.choices) == set(COMMANDS)
    for name, parser in subcommands.choices.items():
        assert parser.description and len(parser.description) > 40, name
        assert run([name, "--help"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert parser.description in out


def test_every_manager_option_is_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    spelled = {"database_name": "--database", "prefix": "--key-prefix"}
    names = set(OPTIONS) - NOT_ON_THE_COMMAND_LINE
    flags = {spelled.get(name, "--" + name.replace("_", "-")) for name in names}
    assert {"--owner-key", "--read-preference"} <= flags
    flags |= {"--uri", "--timeout", "--connection-option", "--config", "--section", "--prefix"}
    for name in (*MAINTENANCE, *OWNER_COMMANDS):
        assert run([name, "--help"]) == 0
        out = capsys.readouterr().out
        for flag in flags:
            assert re.search(rf"{flag}(?![\w-])", out), (name, flag)
        assert ("--quiet" in out) == (name in MAINTENANCE), name
    assert run(["purge-expired", "--help"]) == 0
    assert "--batch-size" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mongo-sessions {__version__}"


# -- mistakes ---------------------------------------------------------------


def _ini(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


BAD_INPUT: dict[str, tuple[list[str], str]] = {
    "negative timeout": (["stats", "--timeout", "-1"], "--timeout"),
    "infinite timeout": (["stats", "--timeout", "inf"], "--timeout"),
    "http uri": (["stats", "--uri", "http://example.com/"], "invalid URI"),
    "uri without host": (["stats", "--uri", "mongodb://"], "invalid URI"),
    "not a uri": (["stats", "--uri", "not-a-uri"], "invalid URI"),
    "bad database": (
        ["stats", "--uri", "mongodb://127.0.0.1:1", "--database", "bad db"],
        "database",
    ),
    "misspelled uri option": (
        ["stats", "--uri", "mongodb://127.0.0.1:1/?serverSelectionTimeout=5"],
        "invalid URI",
    ),
    "misspelled client option": (
        [
            "ensure-indexes",
            "--uri",
            "mongodb://127.0.0.1:1",
            "--connection-option",
            "serverSelectionTimeout=5",
        ],
        "serverSelectionTimeout",
    ),
    "option without value": (["stats", "--connection-option", "tls"], "NAME=VALUE"),
    "negative expires": (["stats", "--expires", "-5"], "--expires"),
    "bad cleanup": (["stats", "--cleanup", "sometimes"], "--cleanup"),
    "cosmos without expiry": (["stats", "--cleanup", "cosmos", "--expires", "0"], "cosmos"),
    "hash ids without secret": (["stats", "--hash-ids"], "id_secret"),
    "unset secret": (
        ["stats", "--id-secret", "env:MONGO_SESSIONS_UNSET_SECRET"],
        "MONGO_SESSIONS_UNSET_SECRET",
    ),
    "expires key over the id": (["purge-expired", "--expires-key", "_id"], "expires_key"),
    "zero batch size": (["purge-expired", "--batch-size", "0"], "--batch-size"),
    "unknown command": (["purge"], "purge"),
    "prefix without config": (["purge-expired", "--prefix", "session."], "need --config"),
    "missing config": (["stats", "--config", "{tmp}/missing.ini"], "cannot read"),
    "unknown setting": (
        ["stats", "--config", "{tmp}/unknown.ini"],
        "unknown setting 'colection'",
    ),
    "malformed setting": (["stats", "--config", "{tmp}/malformed.ini"], "'expires'"),
    "missing section": (
        ["stats", "--config", "{tmp}/unknown.ini", "--section", "app:other"],
        "no [app:other] section",
    ),
    "ambiguous prefix": (["stats", "--config", "{tmp}/both.ini"], "--prefix"),
    "no settings": (["stats", "--config", "{tmp}/empty.ini"], "none of the settings"),
    "bad interpolation": (["stats", "--config", "{tmp}/percent.ini"], "%%"),
    "not an ini file": (["stats", "--config", "{tmp}/garbage.ini"], "cannot parse"),
    "sessions without owner": (["sessions"], "--owner"),
    "empty owner": (["sessions", "--owner", " "], "--owner"),
    "empty handle": (["revoke", "--owner", "alice", "--handle", "", "--yes"], "--handle"),
    "empty owner key": (["stats", "--owner-key", ""], "owner_key"),
    "bad read preference": (["stats", "--read-preference", "secondaries"], "--read-preference"),
    "revoke without a terminal": (["revoke", "--owner", "alice"], "add --yes"),
    "owners of a beaker config with hashed ids": (
        [
            "sessions",
            "--owner",
            "alice",
            "--config",
            "{tmp}/beaker.ini",
            "--hash-ids",
            "--id-secret",
            "an id secret of some length",
        ],
        "cannot reach Beaker's sessions with hash_ids",
    ),
}


@pytest.fixture
def bad_files(tmp_path: Path) -> Path:
    _ini(tmp_path / "unknown.ini", "[app:main]\nmongo_sessions.colection = x\n")
    _ini(tmp_path / "malformed.ini", "[app:main]\nmongo_sessions.expires = soon\n")
    _ini(tmp_path / "both.ini", "[app:main]\nmongo_sessions.collection = a\n"
                                "session.type = mongodb\nsession.collection = b\n")  # fmt: skip
    _ini(tmp_path / "empty.ini", "[app:main]\nsession.type = file\nsession.data_dir = /x\n")
    _ini(tmp_path / "percent.ini",
         "[app:main]\nmongo_sessions.uri = mongodb://u:pa%40ss@db/\n")  # fmt: skip
    _ini(tmp_path / "garbage.ini", "mongo_sessions.uri = mongodb://u:hunter2@db/\n")
    _ini(
        tmp_path / "beaker.ini",
        "[app:main]\nsession.type = mongodb\nsession.url = mongodb://u:hunter2@127.0.0.1:1/\n",
    )
    return tmp_path


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_a_mistake_gets_one_line_and_a_failure_status(
    case: str, bad_files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, expected = BAD_INPUT[case]
    status = run([arg.replace("{tmp}", str(bad_files)) for arg in argv])
    captured = capsys.readouterr()
    assert status != 0
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert expected in lines[0]
    assert "Traceback" not in captured.err and "hunter2" not in captured.err


def test_secrets_are_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    uri = ("mongodb://admin:hunter2@127.0.0.1:1/?tlsCertificateKeyFilePassword=s3cret"
           "&authMechanismProperties=AWS_SESSION_TOKEN:t0ken&bogusOption=1")  # fmt: skip
    assert run(["stats", "--uri", uri]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "invalid URI" in err
    for secret in ("hunter2", "s3cret", "t0ken"):
        assert secret not in err


def test_the_uri_may_come_from_the_environment(
    mongodb_uri: str, database_name: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("MONGO_SESSIONS_TEST_URI", mongodb_uri)
    assert main(["stats", "--json", "--uri", "env:MONGO_SESSIONS_TEST_URI",
                 "--database", database_name]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["database"] == database_name


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"mongodb://admin:hunter2@127.0.0.1:{free_port()}/"
    commands = [[name] for name in MAINTENANCE]
    commands += [[name, *needed] for name, needed in OWNER_COMMANDS.items()]
    for argv in commands:
        assert main([*argv, "--uri", uri, "--timeout", "0.3"]) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1
        assert "cannot reach MongoDB" in err and "hunter2" not in err and "admin:***@" in err


#: Runs the command as ``mongo-sessions`` does (``main()``) or as a library call
#: (``main(argv)``), with pymongo's exit handler replaced by one that says it ran.
PROGRAM = """
import atexit, sys
import pymongo.synchronous.monitor as monitor
from mongo_session_backends.cli import main

def handler():
    print("pymongo's exit handler ran")

atexit.unregister(monitor._shutdown_resources)
monitor._shutdown_resources = handler
atexit.register(handler)
as_program = sys.argv.pop(1) == "program"
sys.exit(main() if as_program else main(sys.argv[1:]))
"""


def test_the_command_fails_as_a_process_with_one_line() -> None:
    failed = subprocess.run(command("stats", "--uri", "not-a-uri"), capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.splitlines() == [failed.stderr.strip()]
    assert "invalid URI" in failed.stderr and "Traceback" not in failed.stderr


def test_as_the_program_it_skips_pymongos_exit_handler(
    mongodb_uri: str, database_name: str
) -> None:
    """pymongo's exit handler waited up to 0.5 s for closed clients' threads after each command.

    Run as the program, the command closes its clients and unregisters the
    handler; called with arguments (as a library, or by a test) it leaves
    the handler alone.
    """
    args = ["stats", "--uri", mongodb_uri, "--database", database_name]
    for mode, runs in (("program", False), ("library", True)):
        done = subprocess.run([sys.executable, "-c", PROGRAM, mode, *args], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert f"database: {database_name}" in done.stdout
        assert ("pymongo's exit handler ran" in done.stdout) == runs, mode


def test_every_command_closes_its_managers(
    cli_args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    made: list[MongoManager] = []

    def recording(**options: Any) -> MongoManager:
        made.append(MongoManager(**options))
        return made[-1]

    monkeypatch.setattr(cli, "MongoManager", recording)
    commands = [[name] for name in MAINTENANCE]
    commands += [[name, *needed] for name, needed in OWNER_COMMANDS.items()]
    for argv in commands:
        assert main([*argv, *cli_args]) == 0
    assert len(made) == len(commands)
    for manager in made:
        with pytest.raises(ManagerClosed):
            manager.ping()


# -- stats, ensure-indexes, purge-expired -------------------------------------


def test_ensure_indexes(
    cli_args: list[str], collection: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    collection.create_index("expires", expireAfterSeconds=99)
    assert main(["ensure-indexes", *cli_args]) == 0
    out = capsys.readouterr().out
    assert "expireAfterSeconds=0" in out and "was 99" in out
    assert f"{collection.database.name}.sessions" in out
    assert collection.index_information()["expires_1"]["expireAfterSeconds"] == 0
    assert main(["ensure-indexes", *cli_args]) == 0
    assert "already in place" in capsys.readouterr().out


def test_stats_agrees_with_ensure_indexes_for_cosmos(
    cli_args: list[str], collection: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cosmos = ["--collection", "cosmos", "--cleanup", "cosmos", *cli_args]
    assert main(["ensure-indexes", *cosmos, "--expires", "60"]) == 0
    assert collection.database["cosmos"].index_information()["_ts_1"]["expireAfterSeconds"] == 60
    capsys.readouterr()
    assert main(["stats", "--json", *cosmos, "--expires", "60"]) == 0
    assert json.loads(capsys.readouterr().out)["index_problems"] == []
    # Without the application's --expires, the default of 14 days is expected.
    assert main(["stats", *cosmos]) == 0
    assert "wrong expireAfterSeconds: 60, expected 1209600" in capsys.readouterr().out


def test_stats_and_purge(
    manager: MongoManager, cli_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    manager.set("live", "x" * 3000)
    manager.set("old", 1, timeout=-5)
    assert main(["stats", "--json", *cli_args]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["database"] == manager.database_name and stats["collection"] == "sessions"
    assert stats["live"] == 1 and stats["expired"] == 1 and stats["documents"] == 2
    assert stats["largest_size"] > 3000 and stats["index_problems"] == []
    assert stats["total_size"] // 2 == stats["average_size"]
    assert stats["total_size"] > stats["largest_size"]
    assert "expires_1" in stats["indexes"]
    assert main(["stats", *cli_args]) == 0
    out = capsys.readouterr().out
    assert f"database: {manager.database_name}\ncollection: sessions\n" in out
    assert "live: 1" in out and "index problems: none" in out
    assert re.search(r"largest size: 3,\d{3} bytes \(\d\.\d KiB\)", out)
    assert main(["purge-expired", *cli_args]) == 0
    assert (
        f"deleted 1 expired entry from {manager.database_name}.sessions" in capsys.readouterr().out
    )


def test_stats_reports_index_problems_with_their_values(
    cli_args: list[str], collection: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    collection.insert_one({"_id": "x"})
    assert main(["stats", "--json", *cli_args]) == 0
    assert "missing index on expires" in json.loads(capsys.readouterr().out)["index_problems"]
    collection.create_index("expires", expireAfterSeconds=99)
    assert main(["stats", *cli_args, "--expire-after-seconds", "30"]) == 0
    out = capsys.readouterr().out
    assert "index problems:\n  missing index on ns\n" in out
    assert "'expires_1' on expires has the wrong expireAfterSeconds: 99, expected 30" in out


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, counter: Any) -> Any:
    """The command counter, listening to the command line's client too."""

    def with_counter(**options: Any) -> MongoManager:
        listeners = {"event_listeners": [counter]}
        options["connection_options"] = {**options.get("connection_options", {}), **listeners}
        return MongoManager(**options)

    monkeypatch.setattr(cli, "MongoManager", with_counter)
    return counter


def _seed(manager: MongoManager, clock: Any, expired: int, live: int) -> None:
    """``expired`` entries that expired an hour ago, and ``live`` ones, by real time."""
    clock.advance(-7200)
    manager.set_many({f"old{i}": i for i in range(expired)}, timeout=3600)
    clock.advance(7200)
    manager.set_many({f"new{i}": i for i in range(live)}, timeout=3600)


def test_purge_deletes_in_bounded_batches(
    manager: MongoManager, clock: Any, cli_args: list[str], counted: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _seed(manager, clock, expired=7, live=3)
    counted.reset()
    assert main(["purge-expired", "--batch-size", "3", *cli_args]) == 0
    assert "deleted 7 expired entries" in capsys.readouterr().out
    sent = [document for document in counted.documents if "delete" in document]
    assert len(sent) == 3  # 3 + 3 + 1
    for document in sent:
        (statement,) = document["deletes"]
        # The expiry is checked again when deleting: an entry refreshed meanwhile stays.
        assert "$lte" in statement["q"]["expires"] and "_id" in statement["q"]
    assert sorted(manager.keys()) == ["new0", "new1", "new2"]


def test_purge_finds_ids_of_every_type(manager: MongoManager, collection: Any) -> None:
    past = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    ids: list[Any] = [1, 2.5, "a", "b", "c", ObjectId(), ObjectId()]
    collection.insert_many([{"_id": i, "expires": past} for i in ids])
    collection.insert_one({"_id": "live", "expires": dt.datetime(9999, 1, 1)})
    totals: list[int] = []
    assert manager.purge_expired(batch_size=2, progress=totals.append) == 7
    assert totals == sorted(totals) and totals[-1] == 7
    assert [d["_id"] for d in collection.find()] == ["live"]


# -- the application's own settings -----------------------------------------

#: The options of a deployment that changed every field and name.
CUSTOM = {"collection": "web_sessions", "expires_key": "valid_until", "id_field": "sid"}


def _app_ini(kind: str, uri: str, database: str) -> str:
    """An application's .ini file with the CUSTOM options, as each framework spells them."""
    if kind == "pyramid":
        return f"""
[app:main]
use = egg:myapp
pyramid.reload_templates = false
mongo_sessions.uri = {uri}
mongo_sessions.database_name = {database}
mongo_sessions.collection = web_sessions
mongo_sessions.expires_key = valid_until
mongo_sessions.id_field = sid
mongo_sessions.secret = env:MONGO_SESSIONS_UNSET_SECRET
mongo_sessions.timeout = 1200
mongo_sessions.cookie_secure = true
mongo_sessions.connection_options.appname = myapp

[server:main]
use = egg:waitress#main
"""
    if kind == "beaker-session":
        return f"""
[app:main]
session.type = mongodb
session.url = {uri}
session.database_name = {database}
session.collection = web_sessions
session.expires_key = valid_until
session.id_field = sid
session.key = sid_cookie
session.secret = not-used-by-the-command
session.timeout = 3600
session.data_dir = %(here)s/data
cache.type = memory
"""
    return f"""
[app:main]
session.type = file
session.data_dir = %(here)s/sessions
cache.type = mongodb
cache.url = {uri}
cache.database_name = {database}
cache.collection = web_sessions
cache.expires_key = valid_until
cache.id_field = sid
cache.lock_timeout = 10
cache.regions = short_term
cache.short_term.expire = 60
cache.short_term.type = memory
"""


@pytest.fixture(params=["pyramid", "beaker-session", "beaker-cache"])
def app_ini(
    request: pytest.FixtureRequest, tmp_path: Path, mongodb_uri: str, database_name: str
) -> str:
    return _ini(tmp_path / "app.ini", _app_ini(request.param, mongodb_uri, database_name))


@pytest.fixture
def app_manager(manager_options: dict[str, Any]) -> Iterator[MongoManager]:
    """A manager with the application's options, to write its entries."""
    m = MongoManager(**{**manager_options, **CUSTOM})
    yield m
    m.close()


def test_config_builds_the_indexes_the_application_needs(
    app_ini: str, admin_client: Any, database_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--json", "--config", app_ini]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["database"], stats["collection"]) == (database_name, "web_sessions")
    assert "missing index on valid_until" in stats["index_problems"]
    assert main(["ensure-indexes", "--config", app_ini]) == 0
    info = admin_client[database_name]["web_sessions"].index_information()
    assert info["valid_until_1"]["expireAfterSeconds"] == 0
    assert info["sid_1"]["unique"] is True
    assert "expires_1" not in info
    capsys.readouterr()
    assert main(["stats", "--json", "--config", app_ini]) == 0
    assert json.loads(capsys.readouterr().out)["index_problems"] == []


def test_config_purges_the_applications_expired_entries(
    app_ini: str, app_manager: MongoManager, clock: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(app_manager, clock, expired=4, live=2)
    assert main(["stats", "--json", "--config", app_ini]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["live"], stats["expired"], stats["index_problems"]) == (2, 4, [])
    assert main(["purge-expired", "--config", app_ini, "--batch-size", "3"]) == 0
    assert "deleted 4 expired entries" in capsys.readouterr().out
    assert sorted(app_manager.keys()) == ["new0", "new1"]


def test_the_command_line_overrides_the_config(
    app_ini: str, database_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["stats", "--json", "--config", app_ini, "--collection", "other",
            "--expires-key", "until", "--cleanup", "none"]  # fmt: skip
    assert main(argv) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["database"], stats["collection"]) == (database_name, "other")
    assert stats["index_problems"] == ["missing index on ns", "missing index on sid"]


def test_connection_options_override_without_regard_to_case(
    tmp_path: Path, mongodb_uri: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    built: list[dict[str, Any]] = []

    def recording(**options: Any) -> MongoManager:
        built.append(options)
        return MongoManager(**options)

    monkeypatch.setattr(cli, "MongoManager", recording)
    path = _ini(tmp_path / "app.ini", f"""
[app:main]
mongo_sessions.uri = {mongodb_uri}
mongo_sessions.connection_options.appname = myapp
mongo_sessions.connection_options.sockettimeoutms = 10000
mongo_sessions.connection_options.serverselectiontimeoutms = 30000
""")  # fmt: skip
    argv = [
        "stats",
        "--config",
        path,
        "--timeout",
        "2",
        "--connection-option",
        "socketTimeoutMS=7000",
    ]
    assert main(argv) == 0
    (options,) = built
    shown = {name: str(value) for name, value in options["connection_options"].items()}
    assert shown == {"appname": "myapp", "serverSelectionTimeoutMS": "2000",
                     "connectTimeoutMS": "2000", "socketTimeoutMS": "7000"}  # fmt: skip


def test_config_prefix_and_section_are_chosen_explicitly(
    tmp_path: Path, mongodb_uri: str, database_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _ini(tmp_path / "two.ini", f"""
[app:main]
mongo_sessions.uri = {mongodb_uri}
mongo_sessions.database_name = {database_name}
session.type = mongodb
session.url = {mongodb_uri}
session.database_name = {database_name}
session.collection = beaker

[app:admin]
cache.type = mongodb
cache.url = {mongodb_uri}
cache.database_name = {database_name}
cache.collection = admin_cache
""")  # fmt: skip
    for extra, collection in (
        (["--prefix", "mongo_sessions."], "sessions"),
        (["--prefix", "session"], "beaker"),
        (["--section", "app:admin"], "admin_cache"),
    ):
        assert main(["stats", "--json", "--config", path, *extra]) == 0
        assert json.loads(capsys.readouterr().out)["collection"] == collection


# -- sessions and revoke --------------------------------------------------------


@pytest.fixture
def owned(manager_options: dict[str, Any]) -> Iterator[MongoManager]:
    """A manager that records each session's owner, as the application's would."""
    m = MongoManager(owner_key="user_id", **manager_options)
    yield m
    m.close()


@pytest.fixture
def logged_in(owned: MongoManager, clock: Any) -> list[str]:
    """Sessions of alice written a minute apart (their keys, oldest first), and others.

    The command checks expiry by real time: the clock goes back and returns to it.
    """
    clock.advance(-180)
    for key in ("alice-laptop", "alice-phone", "alice-tablet"):
        owned.set(key, {"user_id": "alice", "cart": [1]})
        clock.advance(60)
    owned.set("bob-laptop", {"user_id": "bob"})
    owned.set("anonymous", {"cart": [2]})
    owned.set("alice-gone", {"user_id": "alice"}, timeout=-5)  # expired
    return ["alice-laptop", "alice-phone", "alice-tablet"]


def _handles(manager: MongoManager, owner: str) -> list[str]:
    return [session["handle"] for session in manager.sessions(owner)]


@pytest.mark.usefixtures("logged_in")
def test_sessions_lists_an_owners_live_sessions(
    owned: MongoManager, cli_args: list[str], counted: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = {s["handle"]: s for s in owned.sessions("alice")}
    assert len(expected) == 3
    counted.reset()
    assert main(["sessions", "--owner", "alice", *cli_args]) == 0
    # One indexed command, after the manager's check of its indexes on first use.
    assert [name for name in counted.commands if name != "listIndexes"] == ["find"]
    header, columns, *rows = capsys.readouterr().out.splitlines()
    assert header == f"3 sessions of alice in {owned.database_name}.sessions, last written first:"
    assert columns.split() == ["handle", "created", "last", "written", "expires"]
    newest_first = sorted(expected.values(), key=lambda s: s["written"], reverse=True)
    assert [row.split()[0] for row in rows] == [s["handle"] for s in newest_first]
    when = newest_first[0]["written"].astimezone(dt.timezone.utc)
    assert f"{when:%Y-%m-%d %H:%M:%S} UTC" in rows[0]
    assert "cart" not in " ".join(rows)

    assert main(["sessions", "--owner", "alice", "--json", *cli_args]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["handle"] for s in listed] == [s["handle"] for s in newest_first]
    for session in listed:
        assert set(session) == {"handle", "created", "written", "expires"}
        for name in ("created", "written", "expires"):
            moment = dt.datetime.fromisoformat(session[name])
            assert moment == expected[session["handle"]][name] and moment.utcoffset() is not None

    assert main(["sessions", "--owner", "carol", *cli_args]) == 0
    none = f"no live sessions of carol in {owned.database_name}.sessions\n"
    assert capsys.readouterr().out == none
    assert main(["sessions", "--owner", "carol", "--json", *cli_args]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_sessions_that_never_expire(
    owned: MongoManager, cli_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    owned.set("kiosk", {"user_id": 42}, timeout=0)  # an int id is listed as its str
    assert main(["sessions", "--owner", "42", *cli_args]) == 0
    row = capsys.readouterr().out.splitlines()[2]
    assert row.split()[0] == owned.sessions(42)[0]["handle"] and row.endswith("  never")


def test_revoke_with_yes_ends_every_session_of_the_owner(
    owned: MongoManager, logged_in: list[str], cli_args: list[str], counted: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    owned.delete("alice-gone")  # an expired session is not listed, but would be counted
    counted.reset()
    assert main(["revoke", "--owner", "alice", "--yes", *cli_args]) == 0
    # One indexed command, nothing asked or listed.
    assert [name for name in counted.commands if name != "listIndexes"] == ["update"]
    assert capsys.readouterr().out == (
        f"revoked 3 sessions of alice in {owned.database_name}.sessions\n"
    )
    assert [owned.get(key) for key in logged_in] == [None, None, None]
    assert owned.get("bob-laptop") == {"user_id": "bob"} and owned.get("anonymous")
    # A request that loaded a session before cannot bring it back.
    assert owned.set("alice-phone", {"user_id": "alice"}, only_if_live=True) is False
    assert main(["revoke", "--owner", "alice", "--yes", *cli_args]) == 0
    assert "revoked 0 sessions of alice" in capsys.readouterr().out


def test_revoke_one_session_by_its_handle(
    owned: MongoManager, logged_in: list[str], cli_args: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    laptop, phone, tablet = logged_in
    before = {s["handle"]: s for s in owned.sessions("alice")}
    handle = min(before.values(), key=lambda s: s["created"])["handle"]  # the laptop's
    argv = ["revoke", "--owner", "alice", "--handle", handle, "--yes", *cli_args]
    assert main(argv) == 0
    assert capsys.readouterr().out == (
        f"revoked 1 session of alice in {owned.database_name}.sessions\n"
    )
    assert owned.get(laptop) is None and owned.get(phone) and owned.get(tablet)
    assert sorted(_handles(owned, "alice")) == sorted(set(before) - {handle})
    # The handle is gone now; bob cannot name alice's sessions either.
    other = _handles(owned, "alice")[0]
    for owner, name in (("alice", handle), ("bob", other)):
        assert main(["revoke", "--owner", owner, "--handle", name, "--yes", *cli_args]) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == (
            f"error: no live session of {owner} has the handle {name} in "
            f"{owned.database_name}.sessions\n"
        )
    assert owned.get(phone) and owned.get(tablet)


@pytest.mark.usefixtures("logged_in")
def test_revoke_refuses_without_a_terminal_and_reads_nothing(
    owned: MongoManager, cli_args: list[str], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    answer = io.StringIO("y\n")
    monkeypatch.setattr(sys, "stdin", answer)
    assert main(["revoke", "--owner", "alice", *cli_args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert "stdin is not a terminal: add --yes" in captured.err
    assert answer.tell() == 0  # the piped "y" is not taken as a confirmation
    assert len(owned.sessions("alice")) == 3


@pytest.mark.usefixtures("logged_in")
def test_revoke_as_a_process_on_an_open_pipe_does_not_wait_for_input(
    owned: MongoManager, cli_args: list[str]
) -> None:
    process = subprocess.Popen(command("revoke", "--owner", "alice", *cli_args),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)  # fmt: skip
    try:
        status = process.wait(60)  # stdin stays open: the command must not read it
    finally:
        process.kill()
    assert process.stdout is not None and process.stderr is not None
    assert status == 2 and process.stdout.read() == b""
    err = process.stderr.read().decode()
    assert err.splitlines() == ["error: revoke asks for confirmation, and stdin is not a "
                                "terminal: add --yes"]  # fmt: skip
    for stream in (process.stdin, process.stdout, process.stderr):
        assert stream is not None
        stream.close()
    assert len(owned.sessions("alice")) == 3


def _on_terminal(args: list[str], answer: bytes | None = None) -> tuple[int, bytes, bytes]:
    """Run ``args`` with stderr on a pseudo-terminal, and stdin too if there is an answer.

    Returns the status, stdout, and what the terminal showed (the question,
    the typed answer echoed, progress, and any error).
    """
    main_fd, terminal = pty.openpty()
    stdin = subprocess.DEVNULL if answer is None else terminal
    try:
        process = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE,
                                   stderr=terminal)  # fmt: skip
    finally:
        os.close(terminal)
    shown, answered = b"", False
    try:
        while True:
            ready, _, _ = select.select([main_fd], [], [], 60)
            if not ready:
                process.kill()
                raise AssertionError(f"the command stalled on the terminal: {shown!r}")
            try:
                chunk = os.read(main_fd, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            shown += chunk
            if answer is not None and not answered and shown.endswith(b"[y/N] "):
                os.write(main_fd, answer)
                answered = True
    finally:
        os.close(main_fd)
    assert process.stdout is not None
    out = process.stdout.read()
    process.stdout.close()
    return process.wait(60), out, shown


def test_revoke_asks_on_a_terminal(
    owned: MongoManager, logged_in: list[str], cli_args: list[str]
) -> None:
    owned.delete("alice-gone")  # see test_revoke_counts_what_it_asked_about
    place = f"{owned.database_name}.sessions"
    question = f"revoke 3 sessions of alice in {place}? [y/N] ".encode()
    for answer in (b"\n", b"n\n", b"yess\n", b"\x04"):  # Enter, no, a typo, Ctrl+D
        status, out, shown = _on_terminal(command("revoke", "--owner", "alice", *cli_args), answer)
        assert status == 1 and out == b"", answer
        assert shown.startswith(b"handle ") and shown.count(b" UTC") >= 3  # listed first
        assert question in shown and shown.endswith(b"error: not confirmed: nothing revoked\r\n"), (
            shown
        )
        assert len(owned.sessions("alice")) == 3
    status, out, shown = _on_terminal(command("revoke", "--owner", "alice", *cli_args), b"Y\n")
    assert (status, out) == (0, f"revoked 3 sessions of alice in {place}\n".encode())
    assert question in shown
    assert owned.sessions("alice") == [] and owned.get("bob-laptop")


@pytest.mark.usefixtures("logged_in")
def test_revoke_counts_what_it_asked_about(owned: MongoManager, cli_args: list[str]) -> None:
    status, out, shown = _on_terminal(command("revoke", "--owner", "alice", *cli_args), b"y\n")
    assert b"revoke 3 sessions of alice" in shown
    assert status == 0 and out.startswith(b"revoked 3 sessions of alice")


@pytest.mark.usefixtures("logged_in")
def test_revoke_on_a_terminal_asks_about_one_handle(
    owned: MongoManager, cli_args: list[str]
) -> None:
    handle, *others = _handles(owned, "alice")
    status, out, shown = _on_terminal(
        command("revoke", "--owner", "alice", "--handle", handle, *cli_args), b"yes\n"
    )
    place = f"{owned.database_name}.sessions"
    assert f"revoke 1 session of alice in {place}? [y/N] ".encode() in shown
    assert (status, out) == (0, f"revoked 1 session of alice in {place}\n".encode())
    assert sorted(_handles(owned, "alice")) == sorted(others)
    # An unknown handle, or nothing to revoke: said at once, nothing asked.
    for argv, expected_status, expected in (
        (["--owner", "alice", "--handle", handle], 1, b"has the handle"),
        (["--owner", "carol"], 0, b"no live sessions of carol"),
    ):
        status, out, shown = _on_terminal(command("revoke", *argv, *cli_args), b"y\n")
        assert status == expected_status and b"[y/N]" not in shown
        assert expected in out + shown
    assert sorted(_handles(owned, "alice")) == sorted(others)


def test_owners_with_hashed_ids(
    manager_options: dict[str, Any], cli_args: list[str], collection: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    secret = "an id secret of some length"
    hashed = MongoManager(owner_key="user_id", hash_ids=True, id_secret=secret,
                          prefix="app:", **manager_options)  # fmt: skip
    try:
        hashed.set("one", {"user_id": "alice@example.com"})
        hashed.set("two", {"user_id": "alice@example.com"})
        for document in collection.find():
            assert "alice" not in document["user"] + document["_id"]
        options = ["--hash-ids", "--id-secret", secret, "--key-prefix", "app:", *cli_args]
        assert main(["sessions", "--owner", "alice@example.com", "--json", *options]) == 0
        assert len(json.loads(capsys.readouterr().out)) == 2
        # Without the secret, or under another prefix, nothing is found.
        assert main(["sessions", "--owner", "alice@example.com", *cli_args]) == 0
        assert capsys.readouterr().out.startswith("no live sessions")
        argv = ["revoke", "--owner", "alice@example.com", "--yes", *options]
        assert main(argv) == 0
        assert "revoked 2 sessions of alice@example.com" in capsys.readouterr().out
        assert hashed.get("one") is None and hashed.get("two") is None
    finally:
        hashed.close()


def test_owner_key_needs_its_index(cli_args: list[str], collection: Any,
                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert main(["ensure-indexes", *cli_args]) == 0
    assert main(["stats", "--json", "--owner-key", "user_id", *cli_args]) == 0
    capsys.readouterr()
    assert main(["stats", "--owner-key", "user_id", *cli_args]) == 0
    assert "missing index on user" in capsys.readouterr().out
    assert main(["ensure-indexes", "--owner-key", "user_id", *cli_args]) == 0
    assert "user_1" in collection.index_information()
    capsys.readouterr()
    assert main(["stats", "--json", "--owner-key", "user_id", *cli_args]) == 0
    assert json.loads(capsys.readouterr().out)["index_problems"] == []


def _pyramid_ini(path: Path, uri: str, database: str, extra: str = "") -> str:
    return _ini(path, f"""
[app:main]
mongo_sessions.uri = {uri}
mongo_sessions.database_name = {database}
mongo_sessions.secret = a session secret of some length
mongo_sessions.owner_key = auth.userid
{extra}
""")  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "prefix"),
    [
        ("", "session:"),  # the factory's default key prefix
        ("mongo_sessions.prefix = app1:\nmongo_sessions.key_prefix = web:", "app1:web:"),
    ],
    ids=["default", "custom"],
)
def test_config_finds_a_pyramid_apps_sessions(
    extra: str, prefix: str, tmp_path: Path, mongodb_uri: str, database_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    pyramid = pytest.importorskip("mongo_session_backends.pyramid")
    ini = _pyramid_ini(tmp_path / "app.ini", mongodb_uri, database_name, extra)
    parser = configparser.ConfigParser()
    parser.read(ini)
    factory = pyramid.session_factory_from_settings(dict(parser["app:main"]))
    store = factory.store  # the view the application's sessions are written through
    elsewhere = MongoManager(mongodb_uri, database_name=database_name, prefix="elsewhere:")
    try:
        assert store.prefix == prefix
        for sid in ("a" * 43, "b" * 43):
            store.set(sid, {"d": {"auth.userid": "7"}}, owner="7")
        elsewhere.set("another app's", {"user": "7"}, owner="7")
        assert main(["sessions", "--config", ini, "--owner", "7"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"2 sessions of 7 in {database_name}.sessions (prefix {prefix!r})")
        assert main(["revoke", "--config", ini, "--owner", "7", "--yes"]) == 0
        assert "revoked 2 sessions of 7" in capsys.readouterr().out
        assert store.sessions("7") == [] and store.get("a" * 43) is None
        assert len(elsewhere.sessions("7")) == 1
    finally:
        store.close()
        elsewhere.close()


def test_config_finds_a_beaker_apps_sessions(
    owned: MongoManager, tmp_path: Path, mongodb_uri: str, database_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    beaker = pytest.importorskip("mongo_session_backends.beaker")
    ini = _ini(tmp_path / "app.ini", f"""
[app:main]
session.type = mongodb
session.url = {mongodb_uri}
session.database_name = {database_name}
session.owner_key = user_id
session.key = sid
""")  # fmt: skip
    # Each Beaker session is a namespace of its own, keyed by the session id.
    for sid in ("a" * 32, "b" * 32):
        beaker.MongoNamespaceManager(sid, manager=owned).store.set("session", {"user_id": "7"})
    owned.with_prefix("other:").set("not beaker", {"user_id": "7"})
    assert main(["sessions", "--config", ini, "--owner", "7", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["revoke", "--config", ini, "--owner", "7", "--yes"]) == 0
    assert "revoked 2 sessions of 7" in capsys.readouterr().out
    assert owned.with_prefix(f"beaker:32:{'a' * 32}:").get("session") is None
    assert len(owned.sessions("7")) == 1  # the one outside Beaker's namespaces


# -- progress ---------------------------------------------------------------


@pytest.fixture
def expired_entries(manager: MongoManager, clock: Any) -> None:
    _seed(manager, clock, expired=6, live=2)


@pytest.mark.usefixtures("expired_entries")
def test_progress_shows_on_a_terminal(cli_args: list[str]) -> None:
    status, out, shown = _on_terminal(command("purge-expired", "--batch-size", "2",
                                                  *cli_args))  # fmt: skip
    assert status == 0 and b"deleted 6 expired entries" in out
    assert b"\r\x1b[K" in shown and b"expired entries deleted so far" in shown
    assert shown.endswith(b"\r\x1b[K")  # the line is cleared before the report
    status, out, shown = _on_terminal(command("stats", *cli_args))
    assert status == 0 and b"live: 2" in out
    assert b"reading documents" in shown and shown.endswith(b"\r\x1b[K")
    status, out, shown = _on_terminal(command("ensure-indexes", *cli_args))
    assert status == 0 and b"checking the indexes" in shown


@pytest.mark.usefixtures("expired_entries")
def test_no_progress_when_quiet_or_not_a_terminal(cli_args: list[str]) -> None:
    for name in MAINTENANCE:
        status, out, shown = _on_terminal(command(name, "--quiet", *cli_args))
        assert status == 0 and out and shown == b""
        piped = subprocess.run(command(name, *cli_args), capture_output=True, timeout=60)
        assert piped.returncode == 0 and piped.stdout and piped.stderr == b""


def test_stats_reports_each_step(manager: MongoManager, expired_entries: None) -> None:
    steps: list[str] = []
    manager.stats(progress=steps.append)
    assert steps == ["reading documents", "counting live entries", "counting revoked sessions",
                     "counting expired entries", "reading indexes"]  # fmt: skip


def _wait_for_url(process: subprocess.Popen[str], deadline: float) -> tuple[str, int]:
    """The demo's URL and its embedded server's port, from what it prints."""
    assert process.stdout is not None
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        match = re.search(r"(http://\S+/)", line)
        if match:
            embedded = re.search(r"server at mongodb://127.0.0.1:(\d+)", "".join(lines))
            assert embedded, lines
            return match.group(1), int(embedded.group(1))
        if process.poll() is not None:
            break
    raise AssertionError("demo did not start: " + "".join(lines))


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("framework", ["flask", "pyramid", "beaker"])
def test_demo_end_to_end(framework: str) -> None:
    """Start the demo on its embedded server and drive it over real HTTP."""
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    command = [sys.executable, "-m", "mongo_session_backends", "demo",
               "--framework", framework, "--port", str(free_port())]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        url, server_port = _wait_for_url(process, time.monotonic() + 60)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

        def page(path: str = "", form: dict[str, str] | None = None) -> str:
            data = urllib.parse.urlencode(form).encode() if form is not None else None
            with opener.open(url + path, data=data, timeout=10) as response:
                return str(response.read().decode())

        assert "empty" in page()
        body = page("set", {"key": "colour", "value": "teal"})
        assert "colour" in body and "teal" in body
        assert re.search(r'id="live">1<', body)
        assert len(jar) == 1
        other = urllib.request.build_opener()
        with other.open(url, timeout=10) as response:
            assert "teal" not in response.read().decode()
        body = page("logout", {})
        assert "teal" not in body and "empty" in body
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    deadline = time.monotonic() + 10
    while _listening(server_port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _listening(server_port), "the demo left its embedded server running"


def test_embedded_server_runs_in_the_foreground_until_stopped() -> None:
    port = free_port()
    command = [sys.executable, "-m", "mongo_session_backends.embedded", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"serving mongodb://127.0.0.1:{port}/"), line
        data_dir = re.search(r"data in (\S+)\)", line)
        assert data_dir and Path(data_dir.group(1)).is_dir()
        manager = MongoManager(f"mongodb://127.0.0.1:{port}/trial")
        assert manager.ping() and manager.set("k", 1) and manager.get("k") == 1
        manager.close()
        taken = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert taken.returncode == 2 and "already listens" in taken.stderr
        process.terminate()
        assert process.wait(10) == 0
        assert not Path(data_dir.group(1)).exists()  # a temporary directory is removed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_embedded_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    from mongo_session_backends import ServerUnavailable
    from mongo_session_backends.embedded import EmbeddedServer

    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    server = EmbeddedServer(data_dir=str(not_a_dir))
    with pytest.raises(ServerUnavailable, match=r"exited with 1: .*FileExistsError"):
        server.start()
    log = server.log_path
    server.stop()
    assert log is not None and not Path(log).exists()


def test_embedded_server_refuses_a_port_in_use() -> None:
    from mongo_session_backends import ConfigurationError
    from mongo_session_backends.embedded import EmbeddedServer

    with EmbeddedServer() as first, pytest.raises(ConfigurationError, match="already listens"):
        EmbeddedServer(port=first.port).start()
