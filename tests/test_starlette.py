"""The starsessions store: the shared contract, starsessions' store semantics, and
Starlette and FastAPI apps through their test clients."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import bson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient as FastAPITestClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starsessions import SessionAutoloadMiddleware, SessionMiddleware, get_session_id

from mongo_session_backends import (
    AsyncMongoManager,
    ConfigurationError,
    MongoManager,
    SerializationError,
    ServerUnavailable,
    generate_key,
)
from mongo_session_backends.embedded import free_port
from mongo_session_backends.serializers import NativeSerializer
from mongo_session_backends.starlette import MongoDBStore, regenerate_session_id

from .contract import MISSING, LoopDriver, StoreContract

T = TypeVar("T")
NATIVE = NativeSerializer()
PREFIX = "starsessions:"


# -- the shared contract ---------------------------------------------------------


class BytesDriver(LoopDriver):
    """The contract's driver on the store, on an event loop of its own.

    starsessions hands the store bytes, so each contract value goes in as
    BSON bytes (which refuses what the native serializer refuses) and comes
    back decoded. ``timeout=None`` is a browser-session cookie: ``lifetime=0``.
    """

    def __init__(self, store: MongoDBStore) -> None:
        super().__init__()
        self.store = store

    def put(self, key: Any, value: Any, timeout: int | None = None) -> None:
        data = bson.encode({"v": NATIVE.dumps(value)})
        seconds = timeout or 0
        assert self.wait(self.store.write(key, data, lifetime=seconds, ttl=seconds)) == key

    def fetch(self, key: Any) -> Any:
        data = self.wait(self.store.read(key, lifetime=0))
        return NATIVE.loads(bson.decode(data)["v"]) if data else MISSING

    def remove(self, key: Any) -> None:
        self.wait(self.store.remove(key))

    def contains(self, key: Any) -> bool:
        return self.wait(self.store.read(key, lifetime=0)) != b""

    def close(self) -> None:
        self.wait(self.store.aclose())
        self.loop.close()


class TestStoreContract(StoreContract):
    @pytest.fixture
    def driver(self, manager_options: dict[str, Any]) -> Iterator[BytesDriver]:
        d = BytesDriver(MongoDBStore(**manager_options))
        yield d
        d.close()


# -- starsessions' store semantics ---------------------------------------------


@pytest.fixture
async def store(manager_options: dict[str, Any]) -> AsyncIterator[MongoDBStore]:
    s = MongoDBStore(gc_ttl=1000, **manager_options)
    yield s
    await s.aclose()


async def test_write_read_remove(store: MongoDBStore) -> None:
    assert await store.read("unknown", lifetime=60) == b""
    assert await store.write("sid", b'{"a": 1}', lifetime=60, ttl=60) == "sid"
    assert await store.read("sid", lifetime=60) == b'{"a": 1}'
    assert await store.write("sid", b"{}", lifetime=60, ttl=60) == "sid"
    assert await store.read("sid", lifetime=60) == b"{}"
    await store.remove("sid")
    assert await store.read("sid", lifetime=60) == b""
    await store.remove("sid")  # removing a missing session is a no-op


async def test_bytes_are_stored_as_bytes(
    manager_options: dict[str, Any], collection: Any, clock: Any
) -> None:
    with pytest.raises(ConfigurationError, match="serializer"):
        MongoDBStore(serializer="json", **manager_options)  # starsessions serializes itself
    store = MongoDBStore(**manager_options)
    data = bytes(range(256))
    await store.write("sid", data, lifetime=60, ttl=60)
    doc = collection.find_one({"_id": PREFIX + "sid"})
    assert set(doc) == {"_id", "value", "expires", "ns"}
    assert doc["value"] == data and type(doc["value"]) is bytes
    assert doc["expires"] == clock.now + dt.timedelta(seconds=60)
    assert await store.read("sid", lifetime=60) == data
    await store.aclose()


async def test_encryption_and_hashed_ids_apply(
    manager_options: dict[str, Any], collection: Any
) -> None:
    keys = {"encryption_keys": [generate_key()], "hash_ids": True, "id_secret": "i" * 32}
    store = MongoDBStore(**keys, **manager_options)
    await store.write("sid", b'{"user": "marker-value"}', lifetime=60, ttl=60)
    doc = collection.find_one()
    assert b"marker-value" not in bson.encode(doc) and "sid" not in doc["_id"]
    assert await store.read("sid", lifetime=60) == b'{"user": "marker-value"}'
    await store.aclose()


async def test_ttl_expiry(store: MongoDBStore, clock: Any) -> None:
    await store.write("sid", b"data", lifetime=60, ttl=10)  # 10 s left of a 60 s session
    clock.advance(9)
    assert await store.read("sid", lifetime=60) == b"data"
    clock.advance(2)
    assert await store.read("sid", lifetime=60) == b""


async def test_browser_session_kept_for_gc_ttl(
    store: MongoDBStore, clock: Any, collection: Any
) -> None:
    assert await store.write("sid", b"data", lifetime=0, ttl=0) == "sid"
    doc = collection.find_one({"_id": PREFIX + "sid"})
    assert doc["expires"] == clock.now + dt.timedelta(seconds=1000)
    clock.advance(999)
    assert await store.read("sid", lifetime=0) == b"data"
    clock.advance(2)
    assert await store.read("sid", lifetime=0) == b""


async def test_run_out_session_is_deleted(store: MongoDBStore, collection: Any) -> None:
    await store.write("sid", b"data", lifetime=60, ttl=60)
    for ttl in (0, -5):
        assert await store.write("sid", b"newer", lifetime=60, ttl=ttl) == "sid"
        assert await store.read("sid", lifetime=60) == b""
    assert collection.count_documents({}) == 0


async def test_data_must_be_bytes(store: MongoDBStore, collection: Any) -> None:
    await store.write("sid", b"old", lifetime=60, ttl=60)
    for data in ("text", {"a": 1}, bytearray(b"x"), None):
        for ttl in (60, 0):
            with pytest.raises(SerializationError, match="bytes"):
                await store.write("sid", data, lifetime=60, ttl=ttl)  # type: ignore[arg-type]
    assert await store.read("sid", lifetime=60) == b"old"


async def test_entry_of_another_kind_reads_as_missing(
    store: MongoDBStore, manager_options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    other = AsyncMongoManager(**manager_options)
    await other.set(PREFIX + "sid", {"secret": "marker-value"}, 60)
    assert await store.read("sid", lifetime=60) == b""
    assert "marker-value" not in caplog.text
    await other.aclose()


async def test_one_command_per_operation(store: MongoDBStore, counter: Any) -> None:
    await store.write("warm", b"x", lifetime=60, ttl=60)  # connects and prepares
    operations: dict[str, tuple[Callable[[], Awaitable[Any]], list[str]]] = {
        "read": (lambda: store.read("warm", 60), ["find"]),
        "read missing": (lambda: store.read("nope", 60), ["find"]),
        "write": (lambda: store.write("sid", b"x", 60, 60), ["update"]),
        "write browser session": (lambda: store.write("sid", b"x", 0, 0), ["update"]),
        "write run out": (lambda: store.write("sid", b"x", 60, 0), ["delete"]),
        "remove": (lambda: store.remove("warm"), ["delete"]),
    }
    for name, (operation, commands) in operations.items():
        counter.reset()
        await operation()
        assert counter.commands == commands, name


async def test_shared_manager_and_prefixes(
    async_manager: AsyncMongoManager, collection: Any
) -> None:
    one = MongoDBStore(async_manager)
    two = MongoDBStore(async_manager.with_prefix("app2:"), key_prefix="s:")
    await one.write("sid", b"one", 60, 60)
    await two.write("sid", b"two", 60, 60)
    assert await one.read("sid", 60) == b"one" and await two.read("sid", 60) == b"two"
    assert sorted(d["_id"] for d in collection.find()) == ["app2:s:sid", PREFIX + "sid"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gc_ttl": 0}, "gc_ttl"),
        ({"gc_ttl": -1}, "gc_ttl"),
        ({"gc_ttl": "soon"}, "gc_ttl"),
        ({"gc_ttl": None}, "gc_ttl"),
        ({"gc_ttl": True}, "gc_ttl"),
        ({"key_prefix": None}, "key_prefix"),
        ({"key_prefix": b"s:"}, "key_prefix"),
        ({"expires": 60}, "gc_ttl"),
        ({"gc_tll": 60}, "unknown option gc_tll"),
        ({"uri": "http://localhost"}, "mongodb://"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MongoDBStore(**options)


def test_manager_is_async_and_alone(manager: MongoManager, mongodb_uri: str) -> None:
    with pytest.raises(ConfigurationError, match="AsyncMongoManager"):
        MongoDBStore(manager)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not both"):
        MongoDBStore(AsyncMongoManager(mongodb_uri), uri=mongodb_uri)


def test_gc_ttl_as_timedelta_and_repr() -> None:
    store = MongoDBStore(uri="mongodb://user:hunter2@localhost/db", gc_ttl=dt.timedelta(hours=2))
    assert store.gc_ttl == 7200
    assert "hunter2" not in repr(store) and "7200" in repr(store)


# -- through Starlette and FastAPI ------------------------------------------------


async def visit(request: Request) -> JSONResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JSONResponse({"visits": request.session["visits"], "id": get_session_id(request)})


async def login(request: Request) -> JSONResponse:
    await regenerate_session_id(request)
    request.session["user"] = "alice"
    return JSONResponse({"id": get_session_id(request)})


async def logout(request: Request) -> Response:
    request.session.clear()
    return Response(status_code=204)


async def peek(request: Request) -> JSONResponse:
    return JSONResponse(dict(request.session))


ROUTES: list[tuple[str, Callable[[Request], Coroutine[Any, Any, Response]], str]] = [
    ("/", visit, "GET"),
    ("/login", login, "POST"),
    ("/logout", logout, "POST"),
    ("/peek", peek, "GET"),
]


def lifespan_closing(store: MongoDBStore) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        await store.aclose()

    return lifespan


def starlette_app(store: MongoDBStore, **session: Any) -> Starlette:
    return Starlette(
        routes=[Route(path, endpoint, methods=[method]) for path, endpoint, method in ROUTES],
        middleware=[
            Middleware(SessionMiddleware, store=store, **session),
            Middleware(SessionAutoloadMiddleware),
        ],
        lifespan=lifespan_closing(store),
    )


def fastapi_app(store: MongoDBStore, **session: Any) -> FastAPI:
    app = FastAPI(lifespan=lifespan_closing(store))
    for path, endpoint, method in ROUTES:
        app.add_api_route(path, endpoint, methods=[method])
    app.add_middleware(SessionAutoloadMiddleware)
    app.add_middleware(SessionMiddleware, store=store, **session)
    return app


FRAMEWORKS = {
    "starlette": (starlette_app, TestClient),
    "fastapi": (fastapi_app, FastAPITestClient),
}


class Site:
    """An app of one framework on a store of this test's manager, and its clients."""

    def __init__(self, framework: str, manager_options: dict[str, Any]) -> None:
        self.make_app, self.client_class = FRAMEWORKS[framework]
        self.manager_options = manager_options

    @contextlib.contextmanager
    def clients(self, count: int = 1, **session: Any) -> Iterator[list[TestClient]]:
        """``count`` clients (cookie jars) of one running app; HTTPS for its secure cookies."""
        store = MongoDBStore(gc_ttl=1000, **self.manager_options)
        app = self.make_app(store, **session)
        with self.client_class(app, base_url="https://testserver") as first:
            others = [first]
            for _ in range(count - 1):
                other = self.client_class(app, base_url="https://testserver")
                other.portal = first.portal  # the same running app and loop
                others.append(other)
            yield others


@pytest.fixture(params=sorted(FRAMEWORKS))
def site(request: pytest.FixtureRequest, manager_options: dict[str, Any]) -> Site:
    return Site(request.param, manager_options)


@pytest.fixture(autouse=True)
def frozen_time(monkeypatch: pytest.MonkeyPatch, clock: Any) -> None:
    """starsessions reads ``time.time()`` for a session's age: give it the manager's clock."""
    clock.now = clock.now.replace(microsecond=0)
    fake = types.SimpleNamespace(time=lambda: clock.now.timestamp())
    monkeypatch.setattr("starsessions.session.time", fake)


def visits(client: TestClient) -> int:
    response = client.get("/")
    assert response.status_code == 200
    return int(response.json()["visits"])


def live_ids(collection: Any, clock: Any) -> list[str]:
    return [d["_id"] for d in collection.find({"expires": {"$gt": clock.now}})]


def test_new_session_reload_and_modify(site: Site, collection: Any, clock: Any) -> None:
    with site.clients() as [client]:
        response = client.get("/peek")
        assert response.json() == {} and "set-cookie" not in response.headers  # empty: no write
        assert collection.count_documents({}) == 0
        assert [visits(client) for _ in range(3)] == [1, 2, 3]
        sid = client.cookies["session"]
        assert live_ids(collection, clock) == [PREFIX + sid]
        assert client.get("/peek").json()["visits"] == 3


def test_expiry_fixed_lifetime(site: Site, clock: Any) -> None:
    with site.clients(lifetime=60) as [client]:
        assert visits(client) == 1
        clock.advance(30)
        assert visits(client) == 2  # a non-rolling session keeps its first expiry
        clock.advance(28)
        assert visits(client) == 3
        clock.advance(2)
        assert visits(client) == 1


def test_expiry_rolling(site: Site, clock: Any) -> None:
    with site.clients(lifetime=60, rolling=True) as [client]:
        assert visits(client) == 1
        for n in range(2, 5):
            clock.advance(50)
            assert visits(client) == n
        clock.advance(61)
        assert visits(client) == 1


def test_browser_session_cookie_kept_for_gc_ttl(site: Site, clock: Any, collection: Any) -> None:
    with site.clients() as [client]:  # starsessions' default lifetime=0
        response = client.get("/")
        assert "max-age" not in response.headers["set-cookie"].lower()
        sid = client.cookies["session"]
        assert collection.find_one()["expires"] == clock.now + dt.timedelta(seconds=1000)
        clock.advance(999)
        assert visits(client) == 2
        clock.advance(1001)
        assert visits(client) == 1
        assert client.cookies["session"] != sid  # an id that names no live session is not kept


def test_logout_leaves_no_document(site: Site, collection: Any) -> None:
    with site.clients() as [client]:
        visits(client)
        assert collection.count_documents({}) == 1
        response = client.post("/logout")
        assert response.status_code == 204
        assert "1970" in response.headers["set-cookie"]  # the cookie is deleted
        assert collection.count_documents({}) == 0
        assert "session" not in client.cookies
        assert visits(client) == 1


def test_regenerate_session_id_removes_old_entry(site: Site, collection: Any, clock: Any) -> None:
    with site.clients() as [client]:
        visits(client)
        visits(client)
        old = client.cookies["session"]
        new = client.post("/login").json()["id"]
        assert new != old and client.cookies["session"] == new
        assert live_ids(collection, clock) == [PREFIX + new]
        assert client.get("/peek").json() == {"visits": 2, "user": "alice"}
        assert visits(client) == 3


#: The ids the store makes: 256 random bits, 43 URL-safe characters.
OUR_ID = re.compile(r"[A-Za-z0-9_-]{43}")


def test_new_and_rotated_sessions_get_256_bit_ids(
    site: Site, collection: Any, clock: Any, counter: Any
) -> None:
    with site.clients(2) as [warm, client]:
        visits(warm)  # the first use prepares the collection
        counter.reset()
        visits(client)
        assert counter.commands == ["update"]  # a new session: one command, its id and all
        sid = client.cookies["session"]
        assert OUR_ID.fullmatch(sid) and PREFIX + sid in live_ids(collection, clock)
        new = client.post("/login").json()["id"]
        assert OUR_ID.fullmatch(new) and client.cookies["session"] == new
        assert PREFIX + new in live_ids(collection, clock)
        assert PREFIX + sid not in live_ids(collection, clock)
        assert visits(client) == 2 and client.cookies["session"] == new  # a live id is kept


async def count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    return await call_next(request)


def test_a_middleware_between_hides_the_read_yet_ids_stay_ours(
    manager_options: dict[str, Any], collection: Any, clock: Any
) -> None:
    store = MongoDBStore(**manager_options)
    app = Starlette(
        routes=[Route(path, endpoint, methods=[method]) for path, endpoint, method in ROUTES],
        middleware=[
            Middleware(SessionMiddleware, store=store),
            Middleware(BaseHTTPMiddleware, dispatch=count),  # runs the read in its own context
            Middleware(SessionAutoloadMiddleware),
        ],
        lifespan=lifespan_closing(store),
    )
    with TestClient(app, base_url="https://testserver") as client:
        assert [visits(client) for _ in range(3)] == [1, 2, 3]
        sid = client.cookies["session"]
        assert OUR_ID.fullmatch(sid) and live_ids(collection, clock) == [PREFIX + sid]
        client.cookies.clear()
        client.cookies.set("session", "0" * 32, domain="testserver.local")  # starsessions' shape
        assert visits(client) == 1
        assert OUR_ID.fullmatch(next(c.value for c in client.cookies.jar))


def test_old_id_gives_fresh_session(site: Site) -> None:
    with site.clients() as [client]:
        visits(client)
        old = client.cookies["session"]
        client.post("/login")
        client.cookies.clear()
        client.cookies.set("session", old)
        assert client.get("/peek").json() == {}


def test_two_clients_isolated(site: Site) -> None:
    with site.clients(2) as [alice, bob]:
        assert [visits(alice) for _ in range(3)] == [1, 2, 3]
        assert visits(bob) == 1
        assert alice.cookies["session"] != bob.cookies["session"]
        assert visits(alice) == 4
        bob.post("/logout")
        assert visits(alice) == 5


@pytest.mark.parametrize(
    "cookie", ["0" * 32, "tampered", "$where", "a.b", '{"$gt": ""}', "x" * 900]
)
def test_unknown_or_tampered_cookie_gives_fresh_session(site: Site, cookie: str) -> None:
    with site.clients() as [client]:
        visits(client)
        visits(client)  # a live session exists
        client.cookies.clear()
        client.cookies.set("session", cookie)
        assert client.get("/peek").json() == {}
        assert visits(client) == 1


def test_one_command_per_store_operation(site: Site, counter: Any) -> None:
    with site.clients() as [client]:
        visits(client)  # connects and prepares the collection
        counter.reset()
        visits(client)
        assert counter.commands == ["find", "update"]
        counter.reset()
        client.post("/logout")
        assert counter.commands == ["find", "delete"]
        counter.reset()
        client.get("/peek")
        assert counter.commands == []  # no cookie: nothing to read, nothing to write


# -- outages ---------------------------------------------------------------------


def dead_store() -> MongoDBStore:
    return MongoDBStore(
        uri=f"mongodb://127.0.0.1:{free_port()}/x",
        connection_options={"serverSelectionTimeoutMS": 300},
    )


async def test_store_outage_raises_within_timeout() -> None:
    store = dead_store()
    operations = [
        store.read("sid", 60),
        store.write("sid", b"x", 60, 60),
        store.write("sid", b"x", 0, 0),
        store.remove("sid"),
    ]
    for operation in operations:
        started = time.monotonic()
        with pytest.raises(ServerUnavailable):
            await operation
        assert time.monotonic() - started < 3
    await store.aclose()


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_request_during_outage_fails_within_timeout(framework: str) -> None:
    make_app, client_class = FRAMEWORKS[framework]
    app = make_app(dead_store())
    with client_class(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        assert c.get("/peek").status_code == 200  # no cookie, empty session: no command
        for cookie in (None, "0" * 32):  # a write of a new session; a read
            if cookie:
                c.cookies.set("session", cookie)
            started = time.monotonic()
            assert c.get("/").status_code == 500
            assert time.monotonic() - started < 3
    with client_class(make_app(dead_store()), base_url="https://testserver") as c:
        c.cookies.set("session", "0" * 32)
        with pytest.raises(ServerUnavailable):
            c.get("/peek")


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_outage_page_from_an_error_handler(framework: str) -> None:
    async def unavailable(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ServerUnavailable):
            return Response("try again soon", status_code=503, headers={"Retry-After": "5"})
        return Response("error", status_code=500)

    make_app, client_class = FRAMEWORKS[framework]
    app = make_app(dead_store())
    app.add_exception_handler(Exception, unavailable)
    with client_class(app, base_url="https://testserver", raise_server_exceptions=False) as c:
        for cookie in (None, "0" * 32):  # a write of a new session; a read
            if cookie:
                c.cookies.set("session", cookie)
            response = c.get("/")
            assert response.status_code == 503 and response.headers["retry-after"] == "5"


def test_a_client_cannot_choose_its_session_id(site: Site, collection: Any) -> None:
    with site.clients() as [client]:
        client.cookies.set("session", "chosen-by-an-attacker", domain="testserver.local")
        assert visits(client) == 1
        sid = next(c.value for c in client.cookies.jar if c.value != "chosen-by-an-attacker")
        client.cookies.clear()
        client.cookies.set("session", sid, domain="testserver.local")
        assert sid != "chosen-by-an-attacker" and len(sid) >= 43  # 256 random bits
        assert collection.count_documents({"_id": {"$regex": "chosen"}}) == 0
        assert visits(client) == 2  # a live id is kept
        assert {c.value for c in client.cookies.jar} == {sid}
