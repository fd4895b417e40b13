"""Faults: server restarts, network faults, outages per adapter, fork, load, soak.

The slow parts are marked ``slow``; ``.ci/run`` runs them after the default suite.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import webtest

from mongo_session_backends import MongoManager, ServerUnavailable
from mongo_session_backends.beaker import MongoNamespaceManager
from mongo_session_backends.cachelib import MongoDBCache
from mongo_session_backends.embedded import EmbeddedServer, free_port
from mongo_session_backends.pyramid import MongoSessionFactory

from .apps import pyramid_app
from .proxy import FaultProxy

FAST_FAIL = {"timeoutMS": 1500, "serverSelectionTimeoutMS": 1000, "connectTimeoutMS": 1000}
BOUND = 4.0  # seconds an operation may take to fail during an outage


def timed(operation: Callable[[], Any]) -> tuple[float, Any]:
    started = time.monotonic()
    try:
        result: Any = operation()
    except Exception as exc:
        result = exc
    return time.monotonic() - started, result


def run_threads(target: Callable[[int], None], count: int, limit: float = 60) -> None:
    """Run ``target(i)`` in ``count`` threads; fail on a hang or an exception."""
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(limit)
        assert not t.is_alive(), "a thread hung"
    assert not errors, errors[:3]


# -- outages per adapter ---------------------------------------------------------


@pytest.fixture
def dead_uri() -> str:
    return f"mongodb://127.0.0.1:{free_port()}/app"


def test_manager_outage_is_bounded(dead_uri: str) -> None:
    m = MongoManager(dead_uri, connection_options=FAST_FAIL)
    for operation in (lambda: m.get("k"), lambda: m.set("k", 1), lambda: m.incr("n")):
        elapsed, result = timed(operation)
        assert isinstance(result, ServerUnavailable) and elapsed < BOUND


def test_beaker_outage(dead_uri: str, caplog: pytest.LogCaptureFixture) -> None:
    ns = MongoNamespaceManager(
        "ns", url=dead_uri, **{"connection_options.serverSelectionTimeoutMS": "300"}
    )
    with pytest.raises(ServerUnavailable):
        ns["k"]
    with pytest.raises(ServerUnavailable):
        ns["k"] = "secret-value"
    tolerant = MongoNamespaceManager(
        "ns", url=dead_uri, empty_on_outage="true",
        **{"connection_options.serverSelectionTimeoutMS": "300"},
    )  # fmt: skip
    with pytest.raises(KeyError):
        tolerant["k"]
    tolerant["k"] = "secret-value"  # dropped, with a warning
    assert "k" not in tolerant
    assert "skipped" in caplog.text and "secret-value" not in caplog.text


def _count(request: Any) -> Any:
    request.session["n"] = request.session.get("n", 0) + 1
    request.response.text = str(request.session["n"])
    return request.response


def _pyramid_app(factory: MongoSessionFactory) -> webtest.TestApp:
    return pyramid_app(_count, factory=factory)


def test_pyramid_outage(dead_uri: str) -> None:
    options = {"uri": dead_uri, "connection_options": {"serverSelectionTimeoutMS": 300}}
    strict = _pyramid_app(MongoSessionFactory("a-long-enough-secret", **options))
    strict.set_cookie("session", "x")
    with pytest.raises(ServerUnavailable):
        strict.get("/")
    tolerant = _pyramid_app(
        MongoSessionFactory("a-long-enough-secret", empty_on_outage=True, **options)
    )
    assert tolerant.get("/").text == "1"
    assert tolerant.get("/").text == "1"  # nothing was stored, nothing fails


# -- network faults ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["stall", "blackhole", "reset"])
def test_network_faults(proxy: FaultProxy, database_name: str, mode: str) -> None:
    m = MongoManager(proxy.uri, database_name=database_name, connection_options=FAST_FAIL)
    cache = MongoDBCache(manager=m)
    m.set("before", 1)
    proxy.set_mode(mode)
    failures: list[Any] = []

    def worker(i: int) -> None:
        for j in range(3):
            elapsed, result = timed(lambda j=j: m.set(f"during-{i}-{j}", 1))  # type: ignore[misc]
            assert elapsed < BOUND, elapsed
            assert result is not True  # never reports an unacknowledged write
            failures.append(result)
        assert cache.set(f"cache-{i}", 1) is False
        assert cache.get("before") is None

    run_threads(worker, 4)
    assert all(isinstance(f, ServerUnavailable) for f in failures)
    proxy.set_mode("pass")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # recovers by itself, same manager
        try:
            assert m.get("before") == 1
            break
        except ServerUnavailable:
            time.sleep(0.2)
    assert m.set("after", 2) and m.get("after") == 2


# -- server restart -----------------------------------------------------------------


@pytest.mark.slow
def test_kill_and_restart_loses_no_acknowledged_write(tmp_path: Any) -> None:
    if "MONGODB_URI" in os.environ:
        pytest.skip("needs a server this test can kill")
    port = free_port()
    server = EmbeddedServer(port=port, data_dir=str(tmp_path / "data")).start()
    options = {**FAST_FAIL, "journal": True}
    m = MongoManager(server.uri, database_name="restart", connection_options=options)
    acknowledged: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    lock = threading.Lock()

    def writer(i: int) -> None:
        n = 0
        while not stop.is_set():
            key = f"w{i}-{n}"
            elapsed, result = timed(lambda k=key, n=n: m.set(k, {"n": n}, 0))  # type: ignore[misc]
            if result is True:
                with lock:
                    acknowledged.append(key)
            else:
                assert elapsed < BOUND, elapsed
                assert isinstance(result, ServerUnavailable), repr(result)
                errors.append(result)
                time.sleep(0.05)
            n += 1

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)
        server.kill()
        time.sleep(2)
        server = EmbeddedServer(port=port, data_dir=str(tmp_path / "data")).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                before = len(acknowledged)
            time.sleep(1)
            with lock:
                if len(acknowledged) > before:
                    break  # traffic resumed without recreating the manager
        stop.set()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert errors, "the outage was not observed"
        values = m.get_many(acknowledged)
        missing = [k for k, v in zip(acknowledged, values, strict=True) if v is None]
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged writes lost"
    finally:
        stop.set()
        m.close()
        server.stop()


# -- concurrency ---------------------------------------------------------------------


@pytest.mark.slow
def test_sixteen_threads(manager_options: dict[str, Any]) -> None:
    m = MongoManager(**manager_options)
    cache = MongoDBCache(manager=m)
    rounds = 20
    wins = [0] * rounds
    incs = [0] * 16
    deadline = time.monotonic() + 15
    over = threading.Event()
    barrier = threading.Barrier(
        16, action=lambda: over.set() if time.monotonic() > deadline else None
    )

    def worker(i: int) -> None:
        rng = random.Random(i)
        for r in range(rounds):
            barrier.wait(30)
            if over.is_set():
                break
            if cache.add(f"add-{r}", i):
                wins[r] += 1
            for _ in range(5):
                assert m.incr("shared") > 0
                incs[i] += 1
                m.set("same", {"writer": i, "round": r})
                m.get("same")
                m.set(f"own-{i}", r)
                assert m.get(f"own-{i}") == r
                m.delete(f"tmp-{rng.randint(0, 3)}")
                m.add(f"tmp-{rng.randint(0, 3)}", i)

    run_threads(worker, 16)
    played = sum(1 for w in wins if w)
    assert wins[:played] == [1] * played
    assert m.get("shared") == sum(incs)
    assert m.get("same")["writer"] in range(16)  # last write wins, whole


@pytest.mark.slow
def test_destroyed_session_is_not_resurrected(manager: MongoManager) -> None:
    factory = MongoSessionFactory("a-long-enough-secret", manager=manager)
    app = _pyramid_app(factory)
    app.get("/")
    loaded, destroyed = threading.Event(), threading.Event()
    from pyramid.config import Configurator

    config = Configurator()
    config.set_session_factory(factory)

    def slow(request: Any) -> Any:
        request.session.get("n")
        loaded.set()
        destroyed.wait(10)
        request.session["n"] = 99  # a late write
        return request.response

    def logout(request: Any) -> Any:
        request.session.invalidate()
        return request.response

    config.add_route("slow", "/slow")
    config.add_view(slow, route_name="slow")
    config.add_route("logout", "/logout")
    config.add_view(logout, route_name="logout")
    other = webtest.TestApp(config.make_wsgi_app())
    other.set_cookie("session", app.cookies["session"])
    late = webtest.TestApp(config.make_wsgi_app())
    late.set_cookie("session", app.cookies["session"])
    thread = threading.Thread(target=lambda: late.get("/slow"), daemon=True)
    thread.start()
    assert loaded.wait(10)
    other.get("/logout")
    destroyed.set()
    thread.join(10)
    assert loaded.is_set() and factory.store.count() == 0


# -- process model ---------------------------------------------------------------------


def _child_uses_parent_manager(manager: MongoManager, parent_client_id: int) -> None:
    assert manager.set("from-child", os.getpid())
    assert manager.get("from-child") == os.getpid()
    assert id(manager.client) != parent_client_id
    manager.close()


@pytest.mark.slow
def test_after_fork(manager: MongoManager) -> None:
    manager.set("from-parent", 1)
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_child_uses_parent_manager, args=(manager, id(manager.client)))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert manager.get("from-parent") == 1  # the parent's client still works
    assert isinstance(manager.get("from-child"), int)


# -- soak ----------------------------------------------------------------------------------


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def _settled_thread_count() -> int:
    """The thread count once other clients' background threads have started."""
    count = threading.active_count()
    for _ in range(50):
        time.sleep(0.1)
        now = threading.active_count()
        if now == count:
            return count
        count = now
    return count


@pytest.mark.slow
def test_soak(manager_options: dict[str, Any], admin_client: Any) -> None:
    seconds = float(os.environ.get("SOAK_SECONDS", "60"))
    options = {k: v for k, v in manager_options.items() if k != "connection_options"}
    admin_client.admin.command("ping")  # the test harness's own client is up
    gc.collect()
    threads_before, sockets_before = _settled_thread_count(), _open_sockets()
    m = MongoManager(**options)
    cache = MongoDBCache(manager=m, key_prefix="soak:")
    stop = threading.Event()
    counts = [0] * 4

    def worker(i: int) -> None:
        rng = random.Random(i)
        while not stop.is_set():
            key = f"k{rng.randint(0, 500)}"
            op = rng.randint(0, 5)
            if op == 0:
                cache.set(key, {"payload": "x" * rng.randint(10, 2000), "n": rng.random()})
            elif op == 1:
                cache.get(key)
            elif op == 2:
                cache.inc(f"counter-{i}")
            elif op == 3:
                cache.add(key, [1, 2, 3])
            elif op == 4:
                cache.delete(key)
            else:
                cache.get_many(key, "k1", "k2")
            counts[i] += 1

    runners = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(4)]
    for t in runners:
        t.start()
    time.sleep(min(5.0, seconds / 4))
    gc.collect()
    start_rss = _rss_kib()
    time.sleep(seconds)
    stop.set()
    for t in runners:
        t.join(30)
    gc.collect()
    growth = _rss_kib() - start_rss
    print(f"soak: {sum(counts)} operations in {seconds:.0f} s, RSS grew by {growth} KiB")
    assert sum(counts) > 1000
    assert growth < 30 * 1024, f"RSS grew by {growth} KiB over {sum(counts)} operations"
    m.close()
    # A monitor blocked in a streaming hello notices the close at its next
    # heartbeat (10 s), so allow a little more than that.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if threading.active_count() <= threads_before and _open_sockets() <= sockets_before:
            break
        time.sleep(0.1)
    assert threading.active_count() <= threads_before, [t.name for t in threading.enumerate()]
    assert _open_sockets() <= sockets_before


def test_listing_keys_during_an_outage(dead_uri: str) -> None:
    m = MongoManager(dead_uri, connection_options=FAST_FAIL, on_error=lambda exc: None)
    m._conn.prepared.ready = True  # skip index creation: the listing itself fails
    with pytest.raises(ServerUnavailable):
        m.keys()


# -- outages at first use ---------------------------------------------------------------


@pytest.mark.parametrize("on_error", [None, "callable"])
def test_indexes_are_created_once_the_server_is_back(
    proxy: FaultProxy, database_name: str, admin_client: Any, on_error: str | None
) -> None:
    errors: list[BaseException] = []
    m = MongoManager(
        proxy.uri,
        database_name=database_name,
        id_field="key",
        connection_options=FAST_FAIL,
        on_error=errors.append if on_error else None,
    )
    proxy.set_mode("reset")
    with pytest.raises(ServerUnavailable):
        m.set("k", 1)
    assert bool(errors) == bool(on_error)
    proxy.set_mode("pass")
    m._conn.prepared.retry_at = 0.0  # the retry wait (1 s and growing) has passed
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            assert m.set("k", 2)
            break
        except ServerUnavailable:
            time.sleep(0.2)
    info = admin_client[database_name]["sessions"].index_information()
    assert info["key_1"]["unique"] and "expires_1" in info
    assert m.add("k", 3) is False  # atomic again: the unique index exists


def test_first_use_during_an_outage_is_bounded_for_every_thread(dead_uri: str) -> None:
    options = {"serverSelectionTimeoutMS": 1000, "connectTimeoutMS": 1000}
    m = MongoManager(dead_uri, connection_options=options)
    cache = MongoDBCache(manager=m)
    elapsed: list[float] = []

    def call(i: int) -> None:
        took, result = timed(lambda: m.get("k") if i % 2 else cache.set("k", 1))
        elapsed.append(took)
        assert isinstance(result, ServerUnavailable) or result is False, result

    run_threads(call, 8)
    assert len(elapsed) == 8 and max(elapsed) < 2.5, sorted(elapsed)


def test_pyramid_outage_never_logs_the_user_out(proxy: FaultProxy, database_name: str) -> None:
    options = {"uri": proxy.uri, "database_name": database_name, "connection_options": FAST_FAIL}
    factory = MongoSessionFactory("a-long-enough-secret", empty_on_outage=True, **options)

    def read_only(request: Any) -> Any:
        request.response.text = str(request.session.get("n"))
        return request.response

    counting, reading = _pyramid_app(factory), pyramid_app(read_only, factory=factory)
    assert counting.get("/").text == "1"
    cookie = counting.cookies["session"]
    reading.set_cookie("session", cookie)
    proxy.set_mode("reset")
    response = reading.get("/")
    assert response.text == "None" and "Set-Cookie" not in response.headers
    counting.set_cookie("session", cookie)
    response = counting.get("/")  # a write during the outage is dropped, the cookie kept
    assert "Set-Cookie" not in response.headers
    proxy.set_mode("pass")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            assert counting.get("/").text == "2"  # the same session, logged in
            break
        except AssertionError:
            counting.set_cookie("session", cookie)
            time.sleep(0.2)
    else:
        raise AssertionError("the session did not come back")
