"""Replica sets and sharded clusters: read preference, retried writes, shard keys.

The embedded server reports itself as a one-member replica set, so pymongo
sends ``$readPreference`` with every read whose mode is not primary, and
retries a write whose reply was lost with the same session and transaction
number. The fault proxy loses such a reply on purpose. What the commands
carry is read from the command documents the ``counter`` fixture records.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from mongo_session_backends import (
    AsyncMongoManager,
    JSONSerializer,
    MongoManager,
    ServerUnavailable,
)
from mongo_session_backends.beaker import MongoNamespaceManager
from mongo_session_backends.cachelib import MongoDBCache
from mongo_session_backends.connection import DEFAULT_CONNECTION_OPTIONS
from mongo_session_backends.manager import FAR_FUTURE
from mongo_session_backends.pyramid import MongoSessionFactory

from .apps import pyramid_app
from .proxy import FaultProxy

ROOT = Path(__file__).resolve().parent.parent
SECRET = "a-long-enough-secret"
MODES = ("secondaryPreferred", "nearest")
READS = frozenset({"find", "aggregate", "getMore", "count", "distinct"})
Manager = MongoManager | AsyncMongoManager


async def settle(result: Any) -> Any:
    """``result``, awaited when it comes from the async manager: one test serves both."""
    return (await result) if inspect.isawaitable(result) else result


async def close(manager: Manager) -> None:
    if isinstance(manager, AsyncMongoManager):
        await manager.aclose()
    else:
        manager.close()


def sent(counter: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """``(name, document)`` of every command recorded."""
    return list(zip(counter.commands, counter.documents, strict=True))


@pytest.fixture(params=[MongoManager, AsyncMongoManager], ids=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> type[Manager]:
    kind: type[Manager] = request.param
    return kind


# -- read preference -----------------------------------------------------------------


def with_option(uri: str, name: str, value: str) -> str:
    """``uri`` with one more URI option."""
    if "?" in uri:
        return f"{uri}&{name}={value}"
    return f"{uri}{'' if uri.partition('://')[2].count('/') else '/'}?{name}={value}"


@pytest.fixture(
    params=[(mode, where) for mode in MODES for where in ("uri", "connection_options")],
    ids=lambda p: f"{p[0]}-in-{p[1]}",
)
def client_default(
    request: pytest.FixtureRequest, manager_options: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Manager options whose client reads from secondaries by default, and that mode."""
    mode, where = request.param
    connection = dict(manager_options["connection_options"])
    options = {**manager_options, "connection_options": connection}
    if where == "uri":
        options["uri"] = with_option(options["uri"], "readPreference", mode)
    else:
        connection["readPreference"] = mode
    return options, mode


@pytest.fixture(params=[None, "secondaryPreferred"], ids=["default", "opted-in"])
def read_options(
    request: pytest.FixtureRequest, client_default: tuple[dict[str, Any], str]
) -> tuple[dict[str, Any], str]:
    """Options, and the mode every read must carry: primary, unless the manager opts in."""
    options, _ = client_default
    if request.param is None:
        return options, "primary"
    return {**options, "read_preference": request.param}, request.param


def mode_of(command: Mapping[str, Any]) -> str:
    preference = command.get("$readPreference")
    return "primary" if preference is None else str(preference["mode"])


def assert_reads_go_to(counter: Any, expected: str, reads: set[str]) -> None:
    """Every read command carried ``expected``, every other one primary; ``reads`` were sent."""
    modes = {(name, mode_of(command)) for name, command in sent(counter)}
    assert reads <= {name for name, _ in modes}, modes
    assert modes == {(name, expected if name in READS else "primary") for name, _ in modes}


def test_a_plain_client_reads_with_its_own_default(
    client_default: tuple[dict[str, Any], str], counter: Any
) -> None:
    """The control: pymongo sees a replica set, so the tests below would see a secondary read."""
    options, mode = client_default
    client: MongoClient[Any] = MongoClient(options["uri"], **options["connection_options"])
    try:
        client[options["database_name"]]["sessions"].find_one({"_id": "k"})
    finally:
        client.close()
    assert ("find", mode) in {(name, mode_of(command)) for name, command in sent(counter)}


def manager_reads(m: Manager) -> list[Callable[[], Any]]:
    """Every operation of either manager that reads, with the writes that give it data."""
    json = JSONSerializer()
    two_commands = m.with_prefix("two:")
    two_commands.incr_mode = "update_and_read"
    return [
        lambda: m.set("k", 1),
        lambda: m.set_many({"a": 1, "b": 2}),
        lambda: m.get("k"),
        lambda: m.get_entry("k"),
        lambda: m.get_many(["a", "b", "missing"]),
        lambda: m.has("k"),
        lambda: m.add("k", 2),  # taken: the live entry is read back
        lambda: m.incr("n"),
        lambda: two_commands.incr("n"),
        lambda: m.incr("j", serializer=json),  # compare and swap: read, then write
        lambda: m.incr("j", serializer=json),
        lambda: m.keys(),
        lambda: m.count(),
        lambda: m.count(all_prefixes=True),
        lambda: m.set("s", {"n": 1}, owner="user-1"),
        lambda: m.sessions("user-1"),
        lambda: m.revoke("user-1"),
        lambda: m.stats(),
        lambda: m.purge_expired(),
    ]


async def test_manager_reads_go_to_the_primary_unless_opted_in(
    kind: type[Manager], read_options: tuple[dict[str, Any], str], counter: Any
) -> None:
    options, expected = read_options
    m = kind(**options)
    try:
        for call in manager_reads(m):
            await settle(call())
    finally:
        await close(m)
    assert_reads_go_to(counter, expected, {"find", "aggregate"})


def test_cachelib_reads_go_to_the_primary_unless_opted_in(
    read_options: tuple[dict[str, Any], str], counter: Any
) -> None:
    options, expected = read_options
    cache = MongoDBCache(**options)
    try:
        cache.set("k", 1)
        cache.get("k")
        cache.get_many("k", "missing")
        cache.has("k")
        cache.add("k", 2)
        cache.inc("n")
        cache.dec("n")
    finally:
        cache.close()
    assert_reads_go_to(counter, expected, {"find"})


def test_beaker_reads_go_to_the_primary_unless_opted_in(
    read_options: tuple[dict[str, Any], str], counter: Any
) -> None:
    options, expected = read_options
    namespace = MongoNamespaceManager("session-id", **options)
    try:
        namespace["session"] = {"user": 1}
        assert namespace["session"] == {"user": 1}
        assert "session" in namespace and "missing" not in namespace
        assert namespace.keys() == ["session"]
        lock = namespace.get_creation_lock("session")
        assert lock.acquire(wait=False)
        lock.release()
    finally:
        namespace.store.close()
    assert_reads_go_to(counter, expected, {"find"})


def test_pyramid_reads_go_to_the_primary_unless_opted_in(
    read_options: tuple[dict[str, Any], str], counter: Any
) -> None:
    options, expected = read_options
    factory = MongoSessionFactory(SECRET, reissue_time=0, **options)

    def view(request: Any) -> Any:
        if "write" in request.params:
            request.session["n"] = request.session.get("n", 0) + 1
        request.response.text = str(request.session.get("n"))
        return request.response

    app = pyramid_app(view, factory=factory)
    try:
        assert app.get("/?write=1").text == "1"  # created: no read
        assert app.get("/?write=1").text == "2"  # read, then written if live
        assert app.get("/").text == "2"  # read, then its expiry renewed
    finally:
        factory.store.close()
    assert_reads_go_to(counter, expected, {"find"})


# -- retryable writes and reads -------------------------------------------------------


async def test_retryable_writes_and_reads_are_on_by_default(
    mongodb_uri: str, database_name: str
) -> None:
    assert not {name.lower() for name in DEFAULT_CONNECTION_OPTIONS} & {"retrywrites", "retryreads"}
    options: dict[str, Any] = {"uri": mongodb_uri, "database_name": database_name}
    stores: list[Manager] = [
        MongoManager(**options),
        AsyncMongoManager(**options),
        MongoDBCache(**options).store,
        MongoNamespaceManager("session-id", **options).store,
        MongoSessionFactory(SECRET, **options).store,
    ]
    for store in stores:
        client_options = store.client.options
        assert client_options.retry_writes and client_options.retry_reads, store
        await close(store)


#: Lines that turn retries off, with why each may: nothing else in the project does.
RETRIES_OFF = re.compile(r"retry_?(writes|reads)\W{0,3}\s*[=:]\s*\W{0,2}(false|0)\b", re.I)
MAY_TURN_RETRIES_OFF = {
    "docs/performance.rst": "says that the benchmark turns them off for itself",
    "tests/test_bench.py": "checks that the benchmark states its own setting",
    "tests/test_topology.py": "shows what turning them off means",
}


def test_no_default_example_or_test_helper_turns_retries_off() -> None:
    """The benchmark (``bench/``, not scanned) may turn them off for itself, and says so."""
    paths = [ROOT / "README.md", ROOT / "conftest.py", ROOT / "setup.py"]
    for pattern in ("docs/**/*.rst", "mongo_session_backends/*.py", "tests/*.py"):
        paths += ROOT.glob(pattern)
    found = {
        path.relative_to(ROOT).as_posix()
        for path in paths
        if path.is_file() and RETRIES_OFF.search(path.read_text(encoding="utf-8"))
    }
    assert found <= set(MAY_TURN_RETRIES_OFF), found


def behind(proxy: FaultProxy, kind: type[Manager], options: dict[str, Any]) -> Manager:
    """A manager of ``kind`` whose traffic goes through ``proxy``."""
    return kind(**{**options, "uri": proxy.uri, "owner_key": "user"})


@pytest.fixture
async def retrying(
    kind: type[Manager], proxy: FaultProxy, manager_options: dict[str, Any], counter: Any
) -> AsyncIterator[Manager]:
    """A manager behind the proxy, with pymongo's default retries and its indexes made."""
    m = behind(proxy, kind, manager_options)
    await settle(m.ensure_indexes())
    counter.reset()
    yield m
    await close(m)


def assert_retried(counter: Any, name: str, times: int = 1) -> None:
    """``name`` was sent twice per lost reply, each retry with its first attempt's session
    and transaction number (so the server answers the retry from its record of the first)."""
    attempts = [(c["lsid"], c.get("txnNumber")) for n, c in sent(counter) if n == name]
    assert len(attempts) == 2 * times, attempts
    for first, retry in zip(attempts[::2], attempts[1::2], strict=True):
        assert first == retry and first[1] is not None


async def test_add_retried_after_its_reply_was_lost_reports_its_own_insert(
    retrying: Manager, proxy: FaultProxy, counter: Any, collection: Any
) -> None:
    proxy.drop_reply("update")
    assert await settle(retrying.add("k", "value")) is True
    assert proxy.dropped == ["update"]
    assert_retried(counter, "update")
    assert collection.count_documents({}) == 1
    assert await settle(retrying.get("k")) == "value"


@pytest.mark.parametrize(
    ("incr_mode", "serializer", "command"),
    [
        ("find_and_modify", None, "findAndModify"),
        ("update_and_read", None, "update"),
        ("find_and_modify", JSONSerializer(), "update"),  # compare and swap
    ],
    ids=["find_and_modify", "update_and_read", "compare_and_swap"],
)
async def test_incr_retried_after_its_reply_was_lost_applies_once(
    retrying: Manager, proxy: FaultProxy, counter: Any, incr_mode: Any, serializer: Any,
    command: str,
) -> None:  # fmt: skip
    retrying.incr_mode = incr_mode
    for expected in (1, 2):  # creates the entry, then adds to it
        proxy.drop_reply(command)
        assert await settle(retrying.incr("n", serializer=serializer)) == expected
    assert proxy.dropped == [command, command]
    assert_retried(counter, command, times=2)
    assert await settle(retrying.get("n", serializer=serializer)) == 2


#: Single-document writes over "k" ("old", owned by user-1, with its handle): the command,
#: the operation, its result, and the value stored after.
SINGLE_WRITES: dict[str, tuple[str, Callable[[Any, str], Any], Any, Any]] = {
    "set": ("update", lambda m, h: m.set("k", "new"), True, "new"),
    "set if live": ("update", lambda m, h: m.set("k", "new", only_if_live=True), True, "new"),
    "set_many": ("update", lambda m, h: m.set_many({"k": "new", "k2": 2}), ["k", "k2"], "new"),
    "set with an owner": ("update", lambda m, h: m.set("k", "new", owner="user-1"), True, "new"),
    "set_owner": ("update", lambda m, h: m.set_owner("k", "user-2"), True, "old"),
    "touch": ("update", lambda m, h: m.touch("k", 60), True, "old"),
    "delete": ("delete", lambda m, h: m.delete("k"), True, None),
    "acquire_lock": ("update", lambda m, h: m.acquire_lock("k", "token", 30), True, "old"),
    "release_lock": ("delete", lambda m, h: m.release_lock("held", "token"), True, "old"),
}


@pytest.mark.parametrize("operation", list(SINGLE_WRITES))
async def test_a_write_retried_after_its_reply_was_lost_reports_what_it_did(
    retrying: Manager, proxy: FaultProxy, counter: Any, operation: str
) -> None:
    command, call, result, after = SINGLE_WRITES[operation]
    await settle(retrying.set("k", "old", owner="user-1"))
    [session] = await settle(retrying.sessions("user-1"))
    assert await settle(retrying.acquire_lock("held", "token", 30))
    counter.reset()
    proxy.drop_reply(command)
    assert await settle(call(retrying, session["handle"])) == result
    assert proxy.dropped == [command]
    assert_retried(counter, command)
    assert await settle(retrying.get("k")) == after


async def test_a_read_whose_reply_was_lost_is_retried(
    retrying: Manager, proxy: FaultProxy, counter: Any
) -> None:
    await settle(retrying.set("k", 1))
    counter.reset()
    proxy.drop_reply("find")
    assert await settle(retrying.get("k")) == 1
    assert proxy.dropped == ["find"] and counter.commands == ["find", "find"]


#: Multi-document writes, which MongoDB does not retry: (the command, the operation).
MULTI_WRITES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "clear": ("delete", lambda m: m.clear()),
    "delete_many": ("delete", lambda m: m.delete_many(["a", "b"])),
    "revoke": ("update", lambda m: m.revoke("user-1")),
    "purge_expired": ("delete", lambda m: m.purge_expired()),
}


@pytest.mark.parametrize("operation", list(MULTI_WRITES))
async def test_a_multi_document_write_is_not_retried(
    retrying: Manager, proxy: FaultProxy, counter: Any, clock: Any, collection: Any,
    operation: str,
) -> None:  # fmt: skip
    """The caller sees the error although the write was applied, and may run it again."""
    command, call = MULTI_WRITES[operation]
    for key in ("a", "b"):
        await settle(retrying.set(key, {"n": 1}, 10, owner="user-1"))
    if operation == "purge_expired":
        clock.advance(11)
    counter.reset()
    proxy.drop_reply(command)
    with pytest.raises(ServerUnavailable):
        await settle(call(retrying))
    assert counter.commands.count(command) == 1  # sent once, with no transaction number
    assert "txnNumber" not in counter.documents[counter.commands.index(command)]
    assert collection.count_documents({"revoked": {"$ne": True}}) == 0  # applied all the same
    assert await settle(call(retrying)) == 0  # running it again is safe


def test_without_retryable_writes_a_lost_reply_is_an_error(
    proxy: FaultProxy, manager_options: dict[str, Any], counter: Any
) -> None:
    """What turning retries off means: an add whose reply was lost raises, though it
    inserted, and the same add tried again by the caller reports False."""
    connection = {**manager_options["connection_options"], "retryWrites": False}
    m = behind(proxy, MongoManager, {**manager_options, "connection_options": connection})
    assert isinstance(m, MongoManager)
    m.ensure_indexes()
    proxy.drop_reply("update")
    with pytest.raises(ServerUnavailable):
        m.add("k", "value")
    assert m.get("k") == "value"
    assert m.add("k", "value") is False
    m.close()


# -- shard keys -------------------------------------------------------------------------


def key_filters(counter: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """``(command, filter)`` of every find, update, findAndModify and delete statement."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    for name, command in sent(counter):
        if name == "find":
            found.append((name, command["filter"]))
        elif name == "findAndModify":
            found.append((name, command["query"]))
        elif name in ("update", "delete"):
            found += [(name, statement["q"]) for statement in command[name + "s"]]
    return found


def unpinned(counter: Any, field: str, *, listed: bool = False) -> list[Any]:
    """The filters that do not pin ``field`` to one value (with ``listed``: or to an ``$in``)."""
    wrong = []
    for name, query in key_filters(counter):
        value = query.get(field)
        operators = isinstance(value, Mapping) and any(k.startswith("$") for k in value)
        if value is None or (operators and not (listed and list(value) == ["$in"])):
            wrong.append((name, dict(query)))
    return wrong


@pytest.fixture(params=["_id", "key"])
def id_field(request: pytest.FixtureRequest) -> str:
    field: str = request.param
    return field


@pytest.fixture
async def keyed(
    kind: type[Manager], manager_options: dict[str, Any], id_field: str, counter: Any
) -> AsyncIterator[Manager]:
    """A manager with ``id_field``, its indexes made, the counter reset."""
    m = kind(**manager_options, id_field=id_field, owner_key="user")
    await settle(m.ensure_indexes())
    counter.reset()
    yield m
    await close(m)


def hot_path(m: Manager) -> list[Callable[[], Any]]:
    """Every single-key operation, each command kind of it at least once."""
    two_commands = m.with_prefix("two:")
    two_commands.incr_mode = "update_and_read"
    return [
        lambda: m.set("k", 1),
        lambda: m.get("k"),
        lambda: m.get_entry("k"),
        lambda: m.has("k"),
        lambda: m.set("k", 2, only_if_live=True),
        lambda: m.touch("k", 60),
        lambda: m.add("free", 1),  # the upsert alone
        lambda: m.add("k", 3),  # the upsert, then the live entry read back
        lambda: m.incr("n"),
        lambda: m.incr("n"),
        lambda: two_commands.incr("n"),
        lambda: m.set("s", {"n": 1}, owner="user-1"),  # a session with an owner
        lambda: m.set("s", {"n": 2}, only_if_live=True, owner="user-1"),
        lambda: m.add("s2", {"n": 1}, owner="user-1"),
        lambda: m.set_owner("s", "user-2"),
        lambda: m.acquire_lock("k", "token", 30),
        lambda: m.release_lock("k", "token"),
        lambda: m.delete("k"),
    ]


async def test_hot_path_commands_pin_the_shard_key(
    keyed: Manager, counter: Any, id_field: str
) -> None:
    for call in hot_path(keyed):
        await settle(call())
    assert {"find", "update", "findAndModify", "delete"} <= set(counter.commands)
    assert unpinned(counter, id_field) == []


async def test_many_key_commands_list_their_shard_keys(
    keyed: Manager, counter: Any, id_field: str
) -> None:
    """A bulk write pins each statement; a find or delete of many keys lists them in ``$in``."""
    await settle(keyed.set_many({"a": 1, "b": 2}))
    assert await settle(keyed.get_many(["a", "b"])) == [1, 2]
    assert await settle(keyed.delete_many(["a", "b"])) == 2
    assert counter.commands == ["update", "find", "delete"]
    assert unpinned(counter, id_field, listed=True) == []


async def test_compare_and_swap_writes_pin_the_shard_key(
    keyed: Manager, counter: Any, collection: Any, id_field: str
) -> None:
    json = JSONSerializer()
    unreadable = {"value": "not JSON", "expires": FAR_FUTURE, "ns": ""}
    collection.insert_one({id_field: "unreadable", **unreadable})
    assert await settle(keyed.incr("n", serializer=json)) == 1
    assert await settle(keyed.incr("n", serializer=json)) == 2  # read, then compare and swap
    assert await settle(keyed.add("unreadable", 1, serializer=json)) is True
    assert counter.commands.count("update") == 4
    assert unpinned(counter, id_field) == []


async def test_revoking_one_session_is_a_multi_update_that_needs_no_shard_key(
    keyed: Manager, counter: Any, id_field: str
) -> None:
    await settle(keyed.set("s", {"n": 1}, owner="user-1"))
    [listed] = await settle(keyed.sessions("user-1"))
    counter.reset()
    assert await settle(keyed.revoke_handle("user-1", listed["handle"])) is True
    [update] = [d for d in counter.documents if "update" in d]
    assert all(u.get("multi") for u in update["updates"])  # valid without the shard key
