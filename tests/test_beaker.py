"""The Beaker NamespaceManager, directly and through Beaker's public API."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import pytest
import webtest
from beaker.cache import Cache, CacheManager, clsmap
from beaker.middleware import SessionMiddleware

from mongo_session_backends import ConfigurationError, MongoManager
from mongo_session_backends.beaker import MongoNamespaceManager

from .apps import pyramid_app
from .contract import MISSING, StoreContract


class NamespaceDriver:
    def __init__(self, ns: MongoNamespaceManager) -> None:
        self.ns = ns

    def put(self, key: Any, value: Any, timeout: int | None = None) -> None:
        self.ns.set_value(key, value, expiretime=timeout)

    def fetch(self, key: Any) -> Any:
        try:
            return self.ns[key]
        except KeyError:
            return MISSING

    def remove(self, key: Any) -> None:
        del self.ns[key]

    def contains(self, key: Any) -> bool:
        return key in self.ns


@pytest.fixture
def manager_url(mongodb_uri: str, database_name: str) -> str:
    base = mongodb_uri.rstrip("/").split("?")[0]
    if base.count("/") > 2:  # the URI names a database already
        base = base.rsplit("/", 1)[0]
    query = mongodb_uri.partition("?")[2]
    return f"{base}/{database_name}" + (f"?{query}" if query else "")


class TestNamespaceContract(StoreContract):
    @pytest.fixture
    def driver(self, manager: MongoManager) -> NamespaceDriver:
        return NamespaceDriver(MongoNamespaceManager("ns", manager=manager))


def test_registered_as_mongodb() -> None:
    assert clsmap["mongodb"] is MongoNamespaceManager


def test_keys_and_exact_remove(manager: MongoManager) -> None:
    abc = MongoNamespaceManager("abc", manager=manager)
    abcd = MongoNamespaceManager("abcd", manager=manager)
    nested = MongoNamespaceManager("abc:x", manager=manager)
    regex = MongoNamespaceManager(".*", manager=manager)
    for ns in (abc, abcd, nested, regex):
        ns["k"] = ns.namespace
    abc[b"bytes"] = 1
    abc["ü"] = None
    assert sorted(abc.keys()) == ["bytes", "k", "ü"]
    assert abc["ü"] is None and "ü" in abc
    abc.do_remove()
    regex.remove()
    assert abc.keys() == [] and regex.keys() == []
    assert abcd["k"] == "abcd" and nested["k"] == "abc:x"
    with pytest.raises(KeyError):
        abc["k"]
    with pytest.raises(KeyError):
        del abc["k"]


def test_long_keys(manager: MongoManager) -> None:
    ns = MongoNamespaceManager("ns", manager=manager)
    key = "k" * 1000
    ns[key] = 1
    ns[key.encode()] = 2
    assert ns[key] == 2 and ns.has_key(key)


def test_ini_strings_are_coerced(manager_url: str) -> None:
    ns = MongoNamespaceManager(
        "ns",
        url=manager_url,
        collection="beaker_sessions",
        timeout="1320",
        expire_after_seconds="0",
        hash_ids="false",
        data_dir="/tmp/ignored",
        lock_dir="/tmp/ignored",
        digest_filenames="False",
        key_length="250",
        **{"connection_options.maxPoolSize": "7"},
    )
    assert ns.timeout == 1320
    assert ns.store.collection_name == "beaker_sessions"
    assert ns.store.client.options.pool_options.max_pool_size == 7
    ns["k"] = "v"
    assert ns["k"] == "v"


@pytest.mark.parametrize(
    "options",
    [
        {"colection": "typo"},
        {"timeout": "soon"},
        {"expire_after_seconds": "x"},
        {"cleanup": "never"},
    ],
)
def test_bad_settings(manager_url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        MongoNamespaceManager("ns", url=manager_url, **options)
    assert all(str(v) not in str(info.value) for v in options.values() if v not in ("x",))


def test_managers_are_shared(manager_url: str) -> None:
    a = MongoNamespaceManager("a", url=manager_url)
    b = MongoNamespaceManager("b", url=manager_url)
    a["k"] = 1
    assert a.store.client is b.store.client


def test_server_side_expiry(manager: MongoManager, clock: Any) -> None:
    ns = MongoNamespaceManager("ns", manager=manager, timeout="60")
    ns["k"] = "v"
    ns.set_value("short", "v", expiretime=5)
    clock.advance(6)
    assert "short" not in ns and ns["k"] == "v"
    clock.advance(60)
    assert "k" not in ns


# -- Beaker's public API -------------------------------------------------------


@pytest.fixture
def frozen_time(monkeypatch: pytest.MonkeyPatch, clock: Any) -> Any:
    """Beaker's own clock follows the test clock."""
    start, real = clock.now, time.time()
    monkeypatch.setattr(time, "time", lambda: real + (clock.now - start).total_seconds())
    return clock


def test_cache_api(manager_url: str, frozen_time: Any) -> None:
    cache = Cache("mycache", type="mongodb", url=manager_url, expire=10)
    cache.put("a", {"x": 1})
    cache.set_value("b", [1, 2])
    assert cache.get("a") == {"x": 1} and cache["b"] == [1, 2]
    assert cache.has_key("a") and "b" in cache
    cache.remove_value("a")
    assert not cache.has_key("a")
    with pytest.raises(KeyError):
        cache.get_value("a")
    frozen_time.advance(11)
    with pytest.raises(KeyError):
        cache.get("b")
    cache.put("c", 3)
    cache.clear()
    assert not cache.has_key("c")


def test_cache_manager_regions(manager_url: str) -> None:
    cm = CacheManager(
        cache_regions={"short": {"type": "mongodb", "url": manager_url, "expire": "60"}}
    )
    calls: list[int] = []

    @cm.region("short", "squares")
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    assert square(4) == 16 and square(4) == 16
    assert calls == [4]
    cm.region_invalidate(square, "short", "squares", 4)
    assert square(4) == 16 and calls == [4, 4]


def test_creation_lock_in_threads(manager_url: str) -> None:
    calls: list[int] = []
    barrier = threading.Barrier(8)

    def create() -> str:
        calls.append(1)
        time.sleep(0.3)
        return "made"

    def worker() -> None:
        cache = Cache("locks", type="mongodb", url=manager_url)
        barrier.wait()
        assert cache.get("k", createfunc=create) == "made"

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1


def _process_worker(url: str, start_at: float) -> None:
    cache = Cache("plocks", type="mongodb", url=url)
    counter = MongoManager(url, collection="calls")

    def create() -> str:
        counter.incr("calls")
        time.sleep(0.5)
        return "made"

    time.sleep(max(0.0, start_at - time.time()))
    assert cache.get("k", createfunc=create) == "made"


def test_creation_lock_across_processes(manager_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 3
    procs = [ctx.Process(target=_process_worker, args=(manager_url, start_at)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert MongoManager(manager_url, collection="calls").get("calls") == 1


def test_lock_expires_and_only_owner_releases(manager: MongoManager, clock: Any) -> None:
    ns = MongoNamespaceManager("ns", manager=manager, lock_timeout="10")
    first, second = ns.get_creation_lock("k"), ns.get_creation_lock("k")
    assert first.acquire(wait=False)
    assert not second.acquire(wait=False)
    second.release()  # not the owner: no effect
    assert not second.acquire(wait=False)
    clock.advance(11)  # the holder died
    assert second.acquire(wait=False)
    first.release()
    assert not first.acquire(wait=False)
    second.release()
    assert first.acquire(wait=False)
    assert ns.keys() == []  # locks are not entries


# -- sessions through SessionMiddleware ---------------------------------------


def session_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    session = environ["beaker.session"]
    path = environ["PATH_INFO"]
    if path == "/set":
        session["value"] = environ["QUERY_STRING"]
        session.save()
    elif path == "/invalidate":
        session.invalidate()
        session.save()
    elif path == "/delete":
        session.delete()
    body = f"{session.get('value')}|{session.id}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


@pytest.fixture
def beaker_app(manager_url: str) -> webtest.TestApp:
    wsgi = SessionMiddleware(
        session_app,
        {
            "session.type": "mongodb",
            "session.url": manager_url,
            "session.key": "sid",
            "session.timeout": "600",
            "session.data_serializer": "json",
            "session.auto": "false",
        },
    )
    return webtest.TestApp(wsgi)


def test_sessions(beaker_app: webtest.TestApp, collection: Any, frozen_time: Any) -> None:
    value, _ = beaker_app.get("/").text.split("|")
    assert value == "None"
    assert collection.count_documents({}) == 0
    beaker_app.get("/set?hello")
    value, sid = beaker_app.get("/").text.split("|")
    assert value == "hello"
    doc = collection.find_one()
    assert sid in doc["_id"] and isinstance(doc["value"], (bytes, str))
    beaker_app.get("/set?changed")
    assert beaker_app.get("/").text.startswith("changed|")
    other = webtest.TestApp(beaker_app.app)
    assert other.get("/").text.startswith("None|")
    beaker_app.get("/invalidate")
    value, new_id = beaker_app.get("/").text.split("|")
    assert value == "None" and new_id != sid
    beaker_app.get("/set?again")
    frozen_time.advance(601)
    assert beaker_app.get("/").text.startswith("None|")


def test_get_by_id(beaker_app: webtest.TestApp) -> None:
    beaker_app.get("/set?x")
    sid = beaker_app.get("/").text.split("|")[1]
    middleware = beaker_app.app
    from beaker.session import SessionObject

    obj = SessionObject({}, **middleware.options)
    loaded = obj.get_by_id(sid)
    assert loaded is not None and loaded["value"] == "x"
    assert obj.get_by_id("0" * 32) is None


def test_pyramid_beaker(manager_url: str) -> None:
    settings = {
        "session.type": "mongodb",
        "session.url": manager_url,
        "session.key": "sid",
        "session.secret": "s3cret-for-signing",
        "session.data_serializer": "json",
    }

    def view(request: Any) -> Any:
        request.session["n"] = request.session.get("n", 0) + 1
        request.session.save()
        request.response.text = str(request.session["n"])
        return request.response

    app = pyramid_app(view, settings=settings, include="pyramid_beaker")
    assert [app.get("/").text for _ in range(3)] == ["1", "2", "3"]


def test_one_round_trip_each(manager: MongoManager, counter: Any) -> None:
    ns = MongoNamespaceManager("ns", manager=manager)
    ns["warm"] = 1
    for name, operation in {
        "set": lambda: ns.__setitem__("k", {"a": 1}),
        "get": lambda: ns["k"],
        "contains": lambda: "k" in ns,
        "delete": lambda: ns.__delitem__("k"),
    }.items():
        counter.reset()
        operation()
        assert len(counter.commands) == 1, (name, counter.commands)


def test_shared_client(mongodb_uri: str, database_name: str) -> None:
    from pymongo import MongoClient

    client: MongoClient[Any] = MongoClient(mongodb_uri)
    a = MongoNamespaceManager("a", client=client, database_name=database_name)
    b = MongoNamespaceManager("b", client=client, database_name=database_name)
    a["k"] = 1
    assert a.store.client is client and b.store.client is client
    assert client[database_name]["sessions"].count_documents({}) == 1
    client.close()


@pytest.mark.parametrize("how", ["delete", "invalidate"])
def test_mongo_session_logout_leaves_no_record(manager_url: str, collection: Any, how: str) -> None:
    from mongo_session_backends.beaker import MongoSession

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["beaker.session"]
        if environ["PATH_INFO"] == "/logout":
            getattr(session, how)()
        else:
            session["user"] = "ada"
            session.save()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    options = {"session.type": "mongodb", "session.url": manager_url,
               "session.session_class": MongoSession}  # fmt: skip
    client = webtest.TestApp(SessionMiddleware(app, options))
    client.get("/")
    assert collection.count_documents({}) == 1
    client.get("/logout")
    assert collection.count_documents({}) == 0
    client.get("/")  # a new session after logout works
    assert collection.count_documents({}) == 1
