"""The Litestar store: Litestar's store contract, the shared contract, sessions, cache, limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from litestar import Litestar, Request, get, post
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.stores.base import NamespacedStore
from litestar.testing import TestClient

from mongo_session_backends import (
    AsyncMongoManager,
    ConfigurationError,
    MongoManager,
    SerializationError,
    ServerUnavailable,
)
from mongo_session_backends.embedded import free_port
from mongo_session_backends.litestar import MongoDBStore, SessionConfig, rotate_session_id

from .contract import MISSING, VALUES, LoopDriver, StoreContract

T = TypeVar("T")


@pytest.fixture
async def store(manager_options: dict[str, Any]) -> AsyncIterator[MongoDBStore]:
    s = MongoDBStore(**manager_options)
    async with s:
        yield s


# -- Litestar's own store cases (its tests/unit/test_stores.py), time moved by the clock ----


async def test_get(store: MongoDBStore) -> None:
    assert await store.get("foo") is None
    await store.set("key", b"value", 60)
    assert await store.get("key") == b"value"


async def test_set(store: MongoDBStore) -> None:
    values = {"key_1": b"value_1", "key_2": b"value_2"}
    for key, value in values.items():
        await store.set(key, value)
    for key, value in values.items():
        assert await store.get(key) == value


async def test_str_is_stored_as_utf8(store: MongoDBStore, collection: Any) -> None:
    await store.set("foo", "bär")
    assert await store.get("foo") == "bär".encode()
    assert collection.find_one()["value"] == "bär".encode()  # BSON binary, as given


@pytest.mark.parametrize("key", ["key-1", "foo", "ключ", "a/b:c", ".*", "x" * 2000])
async def test_delete(store: MongoDBStore, key: str) -> None:
    await store.set(key, b"value", 60)
    await store.delete(key)
    assert not await store.get(key)


async def test_delete_empty(store: MongoDBStore) -> None:
    await store.delete("foo")


async def test_expires(store: MongoDBStore, clock: Any) -> None:
    await store.set("foo", b"bar", expires_in=1)
    clock.advance(1)
    assert await store.get("foo") is None
    assert not await store.exists("foo")
    assert await store.expires_in("foo") is None


@pytest.mark.parametrize("expires_in", [None, 0, dt.timedelta(0)])
async def test_no_expiry(store: MongoDBStore, clock: Any, expires_in: Any) -> None:
    await store.set("foo", b"bar", expires_in=expires_in)
    clock.advance(10**9)
    assert await store.get("foo") == b"bar"


@pytest.mark.parametrize("renew_for", [10, dt.timedelta(seconds=10)])
async def test_get_and_renew(store: MongoDBStore, clock: Any, renew_for: Any) -> None:
    await store.set("foo", b"bar", expires_in=1)
    assert await store.get("foo", renew_for=renew_for) == b"bar"
    clock.advance(1.1)
    assert await store.get("foo") is not None
    assert await store.expires_in("foo") == 9


async def test_renew_sets_the_expiry_from_now(store: MongoDBStore) -> None:
    await store.set("foo", b"bar", expires_in=100)
    await store.get("foo", renew_for=10)  # shorter, as Litestar's own stores do
    assert await store.expires_in("foo") == 10


async def test_renew_keeps_no_expiry(store: MongoDBStore, clock: Any) -> None:
    await store.set("foo", b"bar")
    await store.get("foo", renew_for=10)
    clock.advance(11)
    assert await store.get("foo") == b"bar"
    assert await store.expires_in("foo") == -1


async def test_renew_never_revives(store: MongoDBStore, clock: Any) -> None:
    await store.set("foo", b"bar", expires_in=1)
    clock.advance(2)
    assert await store.get("foo", renew_for=10) is None
    assert not await store.exists("foo")


async def test_delete_all(store: MongoDBStore) -> None:
    keys = [f"key-{i}" for i in range(10)]
    for i, key in enumerate(keys):
        await store.set(key, b"value", expires_in=10 if i % 2 else None)
    await store.delete_all()
    assert not any([await store.get(key) for key in keys])


async def test_expires_in(store: MongoDBStore, clock: Any) -> None:
    assert await store.expires_in("foo") is None
    await store.set("foo", "bar")
    assert await store.expires_in("foo") == -1
    await store.set("foo", "bar", expires_in=10)
    assert await store.expires_in("foo") == 10
    clock.advance(2.4)
    assert await store.expires_in("foo") == 8  # whole seconds, rounded as Redis's TTL


async def test_exists(store: MongoDBStore) -> None:
    assert await store.exists("foo") is False
    await store.set("foo", b"bar")
    assert await store.exists("foo") is True


async def test_namespaced_get_set(store: MongoDBStore) -> None:
    foo = store.with_namespace("foo")
    await store.set("bar", b"litestar namespaced")
    await foo.set("bar", b"foo namespaced")
    assert await store.get("bar") == b"litestar namespaced"
    assert await foo.get("bar") == b"foo namespaced"
    await foo.delete("bar")
    assert await store.get("bar") == b"litestar namespaced"


async def test_delete_all_does_not_propagate_up(store: MongoDBStore) -> None:
    foo = store.with_namespace("foo")
    await store.set("foo", b"foo-value")
    await foo.set("foo", b"bar-value")
    await foo.delete_all()
    assert await foo.get("foo") is None
    assert await store.get("foo") == b"foo-value"


async def test_delete_all_propagates_down(store: MongoDBStore) -> None:
    deep = store.with_namespace("foo").with_namespace("bar")
    await store.set("foo", b"bar")
    await deep.set("foo", b"bar")
    await store.delete_all()
    assert await store.get("foo") is None
    assert await deep.get("foo") is None


# -- namespaces are exact ---------------------------------------------------------


async def test_namespaces_cannot_be_confused(store: MongoDBStore) -> None:
    a_b = store.with_namespace("a").with_namespace("b")
    ab = store.with_namespace("a_b")
    a = store.with_namespace("a")
    await a_b.set("k", b"nested")
    await ab.set("k", b"flat")
    await a.set("1:b/k", b"a key that spells a nested one")
    assert await a_b.get("k") == b"nested"
    assert await ab.get("k") == b"flat"
    await ab.delete_all()
    assert await a_b.get("k") == b"nested"
    await a_b.delete_all()
    assert await a.get("1:b/k") == b"a key that spells a nested one"


async def test_delete_all_spares_siblings_and_other_adapters(
    manager_options: dict[str, Any], manager: MongoManager
) -> None:
    manager.set("cachelib-key", 1)
    shared = AsyncMongoManager(**manager_options)
    root = MongoDBStore(shared, namespace=None)
    one, other = root.with_namespace("LITESTAR"), root.with_namespace("LITESTARS")
    await one.set("k", b"1")
    await other.set("k", b"2")
    await one.delete_all()
    assert await other.get("k") == b"2"
    await root.set("k", b"root")
    await root.delete_all()  # the root of every Litestar namespace
    assert await other.get("k") is None and await root.get("k") is None
    assert manager.get("cachelib-key") == 1
    await shared.aclose()


async def test_manager_prefix_is_kept(manager_options: dict[str, Any], collection: Any) -> None:
    first = AsyncMongoManager(**manager_options, prefix="app1:")
    second = AsyncMongoManager(**manager_options, prefix="app2:")
    one, two = MongoDBStore(first), MongoDBStore(second)
    await one.set("k", b"1")
    await two.set("k", b"2")
    assert collection.find_one({"value": b"1"})["_id"] == "app1:litestar:8:LITESTAR/k"
    await one.delete_all()
    assert await one.get("k") is None and await two.get("k") == b"2"
    await first.aclose()
    await second.aclose()


def test_namespace_attributes(manager_options: dict[str, Any]) -> None:
    store = MongoDBStore(**manager_options)
    child = store.with_namespace("sessions")
    assert isinstance(child, NamespacedStore) and isinstance(child, MongoDBStore)
    assert child.namespace == "LITESTAR_sessions"  # as RedisStore names it
    assert child.path == ("LITESTAR", "sessions")
    assert MongoDBStore(**manager_options, namespace=None).namespace is None
    assert "LITESTAR" in repr(store) and "sessions" in repr(child)


# -- bad input and configuration -----------------------------------------------------


async def test_value_must_be_bytes_or_str(store: MongoDBStore) -> None:
    with pytest.raises(SerializationError, match="bytes or str"):
        await store.set("k", {"a": 1})  # type: ignore[arg-type]
    await store.set("k", bytearray(b"ab"))  # type: ignore[arg-type]
    assert await store.get("k") == b"ab"


def test_configuration_mistakes(manager_options: dict[str, Any]) -> None:
    shared = AsyncMongoManager(**manager_options)
    with pytest.raises(ConfigurationError, match="either manager or manager options"):
        MongoDBStore(shared, uri="mongodb://localhost")
    with pytest.raises(ConfigurationError, match="did you mean"):
        MongoDBStore(databse_name="x")
    with pytest.raises(ConfigurationError, match="expires_in"):
        MongoDBStore(**manager_options, expires=60)
    with pytest.raises(ConfigurationError, match="bytes"):
        MongoDBStore(**manager_options, serializer="json")
    with pytest.raises(ConfigurationError, match="AsyncMongoManager"):
        MongoDBStore(MongoManager(**manager_options))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="namespace must be a str"):
        MongoDBStore(shared, namespace=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="namespace must be a str"):
        MongoDBStore(shared).with_namespace(None)  # type: ignore[arg-type]


async def test_delete_all_with_hash_ids_is_refused(manager_options: dict[str, Any]) -> None:
    store = MongoDBStore(**manager_options, hash_ids=True, id_secret="s" * 32)
    await store.set("k", b"v")
    assert await store.get("k") == b"v"
    with pytest.raises(ConfigurationError, match="hash_ids"):
        await store.delete_all()
    await store.__aexit__(None, None, None)


async def test_json_manager_still_stores_bytes(manager_options: dict[str, Any]) -> None:
    shared = AsyncMongoManager(**manager_options, serializer="json")
    store = MongoDBStore(shared)
    await store.set("k", b"\x00\xff")
    assert await store.get("k") == b"\x00\xff"
    await shared.aclose()


# -- lifespan -----------------------------------------------------------------------


async def test_lifespan_closes_only_a_manager_it_made(manager_options: dict[str, Any]) -> None:
    made = MongoDBStore(**manager_options)
    child = made.with_namespace("sessions")
    async with made:
        await child.set("k", b"v")
        client = made.manager.client
    assert not made.manager._conn.loops  # its client is closed ...
    assert await child.get("k") == b"v"  # ... and the next lifespan (or use) connects again
    assert made.manager.client is not client
    await made.__aexit__(None, None, None)

    shared = AsyncMongoManager(**manager_options)
    given = MongoDBStore(shared)
    async with given:
        await given.set("k", b"v")
    assert await shared.ping() and await given.get("k") == b"v"
    await shared.aclose()


# -- the shared contract through the store ---------------------------------------------


class StoreDriver(LoopDriver):
    """The contract's driver on the store, on an event loop of its own.

    The store holds bytes, so the driver tags what it stores: ``str`` goes
    to the store as ``str`` (which it encodes), ``bytes`` as they are, other
    values as JSON; a value none of these can carry is handed to the store
    unchanged, for it to refuse.
    """

    def __init__(self, store: MongoDBStore) -> None:
        super().__init__()
        self.store = store

    def put(self, key: Any, value: Any, timeout: int | None = None) -> None:
        if isinstance(value, str):
            data: Any = "s" + value
        elif isinstance(value, bytes):
            data = b"b" + value
        else:
            try:
                data = b"j" + json.dumps(value).encode()
            except TypeError:
                data = value
        self.wait(self.store.set(key, data, timeout))

    def fetch(self, key: Any) -> Any:
        data = self.wait(self.store.get(key))
        if data is None:
            return MISSING
        tag, body = data[:1], data[1:]
        if tag == b"s":
            return body.decode("utf-8")
        return body if tag == b"b" else json.loads(body)

    def remove(self, key: Any) -> None:
        self.wait(self.store.delete(key))

    def contains(self, key: Any) -> bool:
        return self.wait(self.store.exists(key))

    def close(self) -> None:
        self.wait(self.store.__aexit__(None, None, None))
        self.loop.close()


class TestStoreContract(StoreContract):
    values = [v for v in VALUES if type(v) in (bytes, str)]

    @pytest.fixture
    def driver(self, manager_options: dict[str, Any]) -> Iterator[StoreDriver]:
        d = StoreDriver(MongoDBStore(**manager_options).with_namespace("contract"))
        yield d
        d.close()


# -- one command per operation -------------------------------------------------------


async def test_one_command_per_operation(store: MongoDBStore, counter: Any, clock: Any) -> None:
    await store.set("warm", b"v", 60)  # connects and prepares the collection
    operations: dict[str, Callable[[], Awaitable[Any]]] = {
        "get": lambda: store.get("warm"),
        "get, renewing within a second": lambda: store.get("warm", renew_for=60),
        "get, renewing no expiry": lambda: store.get("forever", renew_for=60),
        "set": lambda: store.set("forever", b"v"),
        "exists": lambda: store.exists("warm"),
        "expires_in": lambda: store.expires_in("warm"),
        "delete": lambda: store.delete("gone"),
        "delete_all": lambda: store.with_namespace("x").delete_all(),
    }
    for name, operation in operations.items():
        counter.reset()
        await operation()
        assert len(counter.commands) == 1, (name, counter.commands)
    clock.advance(5)
    counter.reset()
    assert await store.get("warm", renew_for=60) == b"v"
    assert counter.commands == ["find", "update"]  # a read, then the expiry alone
    assert await store.expires_in("warm") == 60


# -- end to end through Litestar's test client ---------------------------------------------


@get("/")
async def visit(request: Request[Any, Any, Any]) -> dict[str, Any]:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return {"visits": request.session["visits"]}


@post("/logout", status_code=200)
async def logout(request: Request[Any, Any, Any]) -> None:
    request.clear_session()


@post("/login", status_code=200)
async def login(request: Request[Any, Any, Any]) -> None:
    await rotate_session_id(request)
    request.session["user"] = "ada"


def session_app(
    store: MongoDBStore, config_class: type[ServerSideSessionConfig] = ServerSideSessionConfig,
    **config: Any,
) -> Litestar:  # fmt: skip
    return Litestar(
        [visit, logout, login],
        middleware=[config_class(max_age=60, **config).middleware],
        stores={"sessions": store},
    )


def visits(client: TestClient[Litestar]) -> int:
    response = client.get("/")
    assert response.status_code == 200
    return int(response.json()["visits"])


def live_sessions(collection: Any, clock: Any) -> int:
    live = {"_id": {"$regex": "sessions"}, "expires": {"$gt": clock()}}
    return int(collection.count_documents(live))


def test_server_side_session(manager_options: dict[str, Any], collection: Any, clock: Any) -> None:
    app = session_app(MongoDBStore(**manager_options).with_namespace("sessions"))
    with TestClient(app) as client:
        assert visits(client) == 1  # a new session
        assert visits(client) == 2  # reloaded and modified
        cookie = client.cookies["session"]
        client.cookies.clear()  # a second browser
        assert visits(client) == 1  # two clients are isolated
        assert visits(client) == 2
        client.cookies.clear()
        client.cookies["session"] = cookie
        assert visits(client) == 3
        assert live_sessions(collection, clock) == 2
        assert collection.find_one({"_id": {"$regex": cookie}})["value"] == b'{"visits":3}'
        clock.advance(61)
        assert visits(client) == 1  # expired on the server: a fresh session
        assert live_sessions(collection, clock) == 1
        assert client.post("/logout").status_code == 200
        assert live_sessions(collection, clock) == 0  # logging out deleted the stored entry
        assert collection.find_one({"_id": {"$regex": cookie}}) is None
        assert visits(client) == 1


def test_unknown_cookie_gives_a_fresh_session(
    manager_options: dict[str, Any], collection: Any
) -> None:
    app = session_app(MongoDBStore(**manager_options))
    with TestClient(app, cookies={"session": "not-a-stored-id"}) as client:
        assert visits(client) == 1
    # Litestar keeps the id the browser sent (the store does not choose ids).
    assert collection.find_one({"_id": {"$regex": "not-a-stored-id$"}}) is not None


def test_session_config_never_keeps_a_clients_id(
    manager_options: dict[str, Any], collection: Any
) -> None:
    app = session_app(MongoDBStore(**manager_options), SessionConfig)
    with TestClient(app) as client:
        client.cookies.set("session", "not-a-stored-id", domain="testserver.local")
        assert visits(client) == 1
        sid = client.cookies["session"]
        assert sid != "not-a-stored-id" and len(sid) == 64  # 32 random bytes, in hex
        assert collection.find_one({"_id": {"$regex": "not-a-stored-id$"}}) is None
        assert visits(client) == 2 and client.cookies["session"] == sid  # a live id is kept


def test_rotate_session_id_keeps_the_data_and_drops_the_old_id(
    manager_options: dict[str, Any], collection: Any
) -> None:
    app = session_app(MongoDBStore(**manager_options), SessionConfig)
    with TestClient(app) as client:
        assert visits(client) == 1
        old = client.cookies["session"]
        assert client.post("/login").status_code == 200
        new = client.cookies["session"]
        assert new != old and collection.find_one({"_id": {"$regex": old + "$"}}) is None
        assert visits(client) == 2  # the data came along
    with TestClient(session_app(MongoDBStore(**manager_options))) as client:
        assert client.post("/login").status_code == 500  # Litestar's own config: refused


async def test_session_config_keeps_a_revoked_session_revoked(
    manager_options: dict[str, Any],
) -> None:
    store = MongoDBStore(owner_key="user", **manager_options)
    app = session_app(store, SessionConfig)
    with TestClient(app, raise_server_exceptions=True) as client:
        assert client.post("/login").status_code == 200
        old = client.cookies["session"]
        loaded = await store.get(old)  # a slow request of this session, in flight
        assert await store.manager.revoke("ada") == 1
        assert visits(client) == 1  # the browser's next request: anonymous, under a new id
        assert client.cookies["session"] != old
        await store.set(old, loaded or b"", 60)  # the slow request saves at last
        assert await store.get(old) is None  # revoked it stays


def test_session_renew_on_access(manager_options: dict[str, Any], clock: Any, counter: Any) -> None:
    app = session_app(MongoDBStore(**manager_options), renew_on_access=True)
    with TestClient(app) as client:
        assert visits(client) == 1
        for n in range(2, 5):
            clock.advance(50)
            counter.reset()
            assert visits(client) == n  # activity keeps it alive past max_age
        assert counter.commands == ["find", "update", "update"]  # read, renew, write


def test_session_in_a_second_lifespan(manager_options: dict[str, Any]) -> None:
    app = session_app(MongoDBStore(**manager_options))
    with TestClient(app) as client:
        assert visits(client) == 1
        cookies = client.cookies
    with TestClient(app, cookies=cookies) as client:
        assert visits(client) == 2


def test_response_cache(manager_options: dict[str, Any], clock: Any) -> None:
    calls: list[int] = []

    @get("/cached", cache=60)
    async def cached() -> str:
        calls.append(1)
        return f"computed {len(calls)}"

    store = MongoDBStore(**manager_options)
    app = Litestar([cached], stores={"response_cache": store.with_namespace("response_cache")})
    with TestClient(app) as client:
        assert client.get("/cached").text == "computed 1"
        assert client.get("/cached").text == "computed 1"  # served from the store
        clock.advance(61)
        assert client.get("/cached").text == "computed 2"


def test_rate_limit(manager_options: dict[str, Any]) -> None:
    @get("/limited")
    async def limited() -> str:
        return "ok"

    config = RateLimitConfig(rate_limit=("minute", 2))
    store = MongoDBStore(**manager_options)
    app = Litestar(
        [limited],
        middleware=[config.middleware],
        stores={config.store: store.with_namespace(config.store)},
    )
    with TestClient(app) as client:
        assert [client.get("/limited").status_code for _ in range(3)] == [200, 200, 429]


# -- outage ---------------------------------------------------------------------------


def dead_store() -> MongoDBStore:
    return MongoDBStore(
        f"mongodb://127.0.0.1:{free_port()}/x",
        connection_options={"serverSelectionTimeoutMS": 300},
    )


def causes(exc: BaseException | None) -> list[type[BaseException]]:
    found = []
    while exc is not None:
        found.append(type(exc))
        exc = exc.__cause__ or exc.__context__
    return found


def test_outage_in_a_request_is_a_500() -> None:
    app = session_app(dead_store())
    cookie = {"session": "ab" * 32}
    with TestClient(app, raise_server_exceptions=False, cookies=cookie) as client:
        started = time.monotonic()
        response = client.get("/")  # reading the session fails: Litestar's error response
        assert response.status_code == 500
        assert response.json()["detail"] == "Internal Server Error"
        assert time.monotonic() - started < 3
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/").status_code == 500  # writing it fails as the response starts
    with TestClient(app) as client, pytest.raises(Exception) as info:
        client.get("/")
    assert ServerUnavailable in causes(info.value)


async def test_outage_every_call_is_bounded() -> None:
    store = dead_store()
    loop = asyncio.get_running_loop()
    started = loop.time()
    calls = [
        store.get("k"),
        store.get("k", renew_for=10),
        store.set("k", b"v", 10),
        store.delete("k"),
        store.delete_all(),
        store.exists("k"),
        store.expires_in("k"),
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, ServerUnavailable) for r in results), results
    assert loop.time() - started < 3
    await store.__aexit__(None, None, None)
