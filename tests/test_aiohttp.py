"""The aiohttp-session storage, through aiohttp's own test client, on the test server.

The shared :class:`~tests.contract.StoreContract` does not run here: its
driver chooses keys and stores any Python value, while this storage makes
its own ids and keeps only what aiohttp-session's encoder gives (JSON by
default). The manager it runs on passes that contract in
``test_async_manager.py``; the cases the contract covers that still apply
(expiry, unreadable and unstorable values) are tested below through the
storage.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp_session
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from aiohttp_session import get_session, new_session

from mongo_session_backends import (
    AsyncMongoManager,
    ConfigurationError,
    MongoManager,
    SerializationError,
    ServerUnavailable,
)
from mongo_session_backends.aiohttp import MongoDBStorage
from mongo_session_backends.embedded import free_port

COOKIE = "AIOHTTP_SESSION"
PREFIX = "aiohttp_session:"
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]


async def visit(request: web.Request) -> web.Response:
    session = await get_session(request)
    session["visits"] = session.get("visits", 0) + 1
    return web.Response(text=f"{session['visits']} visits")


async def peek(request: web.Request) -> web.Response:
    session = await get_session(request)
    return web.json_response({"new": session.new, "data": dict(session)})


async def login(request: web.Request) -> web.Response:
    session = await new_session(request)
    session["user"] = request.query["user"]
    return web.Response(text="in")


async def login_blind(request: web.Request) -> web.Response:
    """new_session() without reading the old session first."""
    session = await new_session(request)
    session["user"] = "blind"
    return web.Response(text="in")


async def rotate_empty(request: web.Request) -> web.Response:
    await get_session(request)
    await new_session(request)
    return web.Response(text="new")


async def logout(request: web.Request) -> web.Response:
    (await get_session(request)).invalidate()
    return web.Response(text="out")


async def remember(request: web.Request) -> web.Response:
    session = await get_session(request)
    session.max_age = int(request.query["seconds"])
    session["remember"] = True
    return web.Response(text="remembered")


async def renew(request: web.Request) -> web.Response:
    (await get_session(request)).changed()
    return web.Response(text="renewed")


async def login_redirect(request: web.Request) -> web.Response:
    session = await new_session(request)
    session["user"] = "redirected"
    raise web.HTTPFound("/peek")


async def put_set(request: web.Request) -> web.Response:
    session = await get_session(request)
    session["tags"] = {"a", "b"}  # json.dumps refuses a set
    return web.Response(text="never sent")


async def degraded(request: web.Request) -> web.Response:
    try:
        session = await get_session(request)
    except ServerUnavailable:
        return web.Response(text="sessions unavailable", status=503)
    return web.Response(text=str(dict(session)))


def make_app(storage: MongoDBStorage) -> web.Application:
    app = web.Application()
    aiohttp_session.setup(app, storage)
    handlers: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
        "/visit": visit,
        "/peek": peek,
        "/login": login,
        "/login-blind": login_blind,
        "/rotate-empty": rotate_empty,
        "/logout": logout,
        "/remember": remember,
        "/renew": renew,
        "/login-redirect": login_redirect,
        "/put-set": put_set,
        "/degraded": degraded,
    }
    for path, handler in handlers.items():
        app.router.add_get(path, handler)
    return app


class SessionTime:
    """aiohttp-session's ``time`` module on the test clock; the cookie jar keeps real time."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def time(self) -> float:
        return float(self.clock.now.timestamp())

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture(autouse=True)
def session_time(clock: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp-session judges ages with ``time.time()``; make it the manager's clock."""
    monkeypatch.setattr(aiohttp_session, "time", SessionTime(clock))


@pytest.fixture
async def storage(manager_options: dict[str, Any]) -> AsyncIterator[MongoDBStorage]:
    s = MongoDBStorage(**manager_options)
    yield s
    await s.store.aclose()


@pytest.fixture
async def client(aiohttp_client: MakeClient, storage: MongoDBStorage) -> Client:
    return await aiohttp_client(make_app(storage))


def cookie(client: Client) -> str | None:
    morsel = client.session.cookie_jar.filter_cookies(client.make_url("/")).get(COOKIE)
    return None if morsel is None else morsel.value


def set_cookie(client: Client, value: str) -> None:
    """Replace the client's cookie, as a browser replaying ``value`` would send it."""
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: value})


async def text(client: Client, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.text()


def doc(collection: Any, sid: str | None) -> Any:
    return collection.find_one({"_id": PREFIX + str(sid)})


# -- the session's life ----------------------------------------------------------


async def test_new_session_reload_modify(client: Client, collection: Any) -> None:
    assert await text(client, "/visit") == "1 visits"
    sid = cookie(client)
    assert sid is not None and len(sid) == 43  # secrets.token_urlsafe(32): 256 bits
    assert await text(client, "/visit") == "2 visits"
    assert cookie(client) == sid
    assert json.loads(await text(client, "/peek")) == {"new": False, "data": {"visits": 2}}
    stored = doc(collection, sid)
    assert set(stored) == {"_id", "value", "expires", "ns"}
    assert stored["value"]["session"] == {"visits": 2}
    assert collection.count_documents({}) == 1


async def test_cookie_attributes(client: Client) -> None:
    response = await client.get("/visit")
    header = response.headers["Set-Cookie"]
    assert header.startswith(f"{COOKIE}=") and "HttpOnly" in header and "Path=/" in header
    assert "Max-Age" not in header  # max_age=None: a browser-session cookie


async def test_session_is_a_queryable_document(client: Client, collection: Any) -> None:
    await text(client, "/login?user=alice")
    found = collection.find_one({"value.session.user": "alice"})
    assert found is not None and found["_id"] == PREFIX + str(cookie(client))


async def test_empty_new_session_writes_nothing_and_sets_no_cookie(
    client: Client, collection: Any, counter: Any
) -> None:
    response = await client.get("/peek")
    assert json.loads(await response.text()) == {"new": True, "data": {}}
    assert "Set-Cookie" not in response.headers
    assert counter.commands == []
    assert collection.count_documents({}) == 0


async def test_two_clients_are_isolated(
    aiohttp_client: MakeClient, storage: MongoDBStorage, collection: Any
) -> None:
    one = await aiohttp_client(make_app(storage))
    two = await aiohttp_client(make_app(storage))
    await text(one, "/visit")
    await text(one, "/visit")
    assert await text(two, "/visit") == "1 visits"
    assert cookie(one) != cookie(two)
    assert await text(one, "/visit") == "3 visits"
    assert collection.count_documents({}) == 2


# -- ending and replacing a session --------------------------------------------------


async def test_invalidate_deletes_the_entry_and_the_cookie(client: Client, collection: Any) -> None:
    await text(client, "/visit")
    sid = cookie(client)
    response = await client.get("/logout")
    assert f"{COOKIE}=" in response.headers["Set-Cookie"]
    assert cookie(client) is None
    assert doc(collection, sid) is None and collection.count_documents({}) == 0
    set_cookie(client, str(sid))  # replaying the old cookie finds nothing
    assert await text(client, "/visit") == "1 visits"


async def test_new_session_rotates_the_id(client: Client, collection: Any) -> None:
    await text(client, "/visit")
    old = cookie(client)
    await text(client, "/login?user=alice")
    new = cookie(client)
    assert new is not None and new != old
    assert doc(collection, old) is None
    assert doc(collection, new)["value"]["session"] == {"user": "alice"}
    set_cookie(client, str(old))
    assert json.loads(await text(client, "/peek"))["new"] is True


async def test_login_then_redirect(client: Client, collection: Any) -> None:
    await text(client, "/visit")
    old = cookie(client)
    response = await client.get("/login-redirect")  # follows the redirect with the new cookie
    assert json.loads(await response.text()) == {"new": False, "data": {"user": "redirected"}}
    assert cookie(client) != old and doc(collection, old) is None


async def test_new_session_without_reading_first_still_deletes_the_old(
    client: Client, collection: Any
) -> None:
    await text(client, "/visit")
    old = cookie(client)
    await text(client, "/login-blind")
    assert cookie(client) != old
    assert doc(collection, old) is None
    assert collection.count_documents({}) == 1


async def test_new_session_left_empty_deletes_the_old_and_its_cookie(
    client: Client, collection: Any
) -> None:
    await text(client, "/visit")
    old = cookie(client)
    await text(client, "/rotate-empty")
    assert cookie(client) is None
    assert doc(collection, old) is None and collection.count_documents({}) == 0


async def test_a_session_deleted_meanwhile_stays_deleted(
    storage: MongoDBStorage, collection: Any
) -> None:
    """Loaded by one request, logged out by another: the first one's save does not revive it."""
    created = make_mocked_request("GET", "/")
    session = await storage.load_session(created)
    session["visits"] = 1
    response = web.Response()
    await storage.save_session(created, response, session)
    sid = response.cookies[COOKIE].value
    request = make_mocked_request("GET", "/", headers={"Cookie": f"{COOKIE}={sid}"})
    session = await storage.load_session(request)
    await storage.store.delete(sid)  # the other request's logout
    session["visits"] = 2
    response = web.Response()
    await storage.save_session(request, response, session)
    assert response.cookies[COOKIE].value == ""  # the cookie is cleared
    assert collection.count_documents({}) == 0


# -- cookies that name nothing -----------------------------------------------------------


async def test_unknown_cookie_gives_a_fresh_session_without_a_write(
    client: Client, collection: Any, counter: Any
) -> None:
    await text(client, "/visit")  # connects and prepares the collection
    counter.reset()
    set_cookie(client, secrets.token_urlsafe(32))
    response = await client.get("/peek")
    assert json.loads(await response.text()) == {"new": True, "data": {}}
    assert "Set-Cookie" not in response.headers
    assert counter.commands == ["find"]
    assert collection.count_documents({}) == 1


@pytest.mark.parametrize(
    "value", ["tampered", "x" * 42 + "!", secrets.token_urlsafe(32) + "x", "$where", "a.b" * 15]
)
async def test_malformed_cookie_is_not_looked_up(
    client: Client, collection: Any, counter: Any, value: str
) -> None:
    set_cookie(client, value)
    assert json.loads(await text(client, "/peek"))["new"] is True
    assert counter.commands == []
    assert await text(client, "/visit") == "1 visits"
    assert cookie(client) != value and len(str(cookie(client))) == 43
    assert collection.count_documents({}) == 1


async def test_unreadable_entry_is_replaced(
    client: Client, collection: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await text(client, "/login?user=marker-value")
    old = cookie(client)
    collection.update_many({}, {"$set": {"value": "nonsense"}})
    assert json.loads(await text(client, "/peek"))["new"] is True
    ours = " ".join(r.getMessage() for r in caplog.records if r.name == "mongo_session_backends")
    assert "unreadable session" in ours and "marker-value" not in ours
    await text(client, "/visit")
    assert cookie(client) != old and doc(collection, old) is None


# -- one command per load and save ------------------------------------------------------------


async def test_one_command_per_load_and_save(client: Client, counter: Any) -> None:
    await text(client, "/visit")  # connects and prepares the collection
    await text(client, "/logout")
    steps = {
        "/visit": ["update"],  # a new session: one insert-if-absent
        "/peek": ["find"],  # loaded, unchanged: not saved
        "/remember?seconds=60": ["find", "update"],
        "/rotate-empty": ["find", "delete"],  # new_session() deletes the old entry
        "/visit?again": ["update"],
        "/login?user=a": ["delete", "update"],  # the same without reading the old one first
        "/logout": ["find", "delete"],
    }
    for path, commands in steps.items():
        counter.reset()
        await text(client, path)
        assert counter.commands == commands, path


# -- expiry -----------------------------------------------------------------------------------


async def test_expiry_follows_max_age(
    aiohttp_client: MakeClient,
    manager_options: dict[str, Any],
    clock: Any,
    collection: Any,
) -> None:
    storage = MongoDBStorage(max_age=60, **manager_options)
    client = await aiohttp_client(make_app(storage))
    response = await client.get("/visit")
    assert "Max-Age=60" in response.headers["Set-Cookie"]
    stored = doc(collection, cookie(client))
    assert abs(stored["expires"] - (clock.now + dt.timedelta(seconds=60))) < dt.timedelta(
        milliseconds=2
    )
    clock.advance(59)
    assert await text(client, "/visit") == "2 visits"  # the write renews the expiry
    clock.advance(59)
    assert json.loads(await text(client, "/peek"))["data"] == {"visits": 2}
    clock.advance(2)
    # The browser still sends the cookie; the server-side entry has expired.
    assert json.loads(await text(client, "/peek")) == {"new": True, "data": {}}
    assert await text(client, "/visit") == "1 visits"
    await storage.store.aclose()


async def test_per_session_max_age_is_kept(client: Client, clock: Any, collection: Any) -> None:
    response = await client.get("/remember?seconds=120")
    assert "Max-Age=120" in response.headers["Set-Cookie"]
    sid = cookie(client)
    clock.advance(100)
    response = await client.get("/visit")  # a later write keeps the session's own max_age
    assert "Max-Age=120" in response.headers["Set-Cookie"]
    assert doc(collection, sid)["value"]["max_age"] == 120
    clock.advance(119)
    assert json.loads(await text(client, "/peek"))["data"]["visits"] == 1
    clock.advance(2)
    assert json.loads(await text(client, "/peek"))["new"] is True


async def test_changed_renews_an_unmodified_session(
    aiohttp_client: MakeClient, manager_options: dict[str, Any], clock: Any
) -> None:
    """The entry's expiry decides, not the session's "created", which changed() leaves alone."""
    storage = MongoDBStorage(max_age=60, **manager_options)
    client = await aiohttp_client(make_app(storage))
    await text(client, "/visit")
    for _ in range(3):
        clock.advance(50)
        await text(client, "/renew")
    clock.advance(50)  # 200 s after the last change, 50 s after the last write
    assert json.loads(await text(client, "/peek"))["data"] == {"visits": 1}
    clock.advance(11)
    assert json.loads(await text(client, "/peek"))["new"] is True
    await storage.store.aclose()


async def test_browser_session_lifetime_is_the_managers_expires(
    aiohttp_client: MakeClient, manager_options: dict[str, Any], clock: Any, collection: Any
) -> None:
    storage = MongoDBStorage(expires=3600, **manager_options)
    client = await aiohttp_client(make_app(storage))
    await text(client, "/visit")
    stored = doc(collection, cookie(client))
    assert abs(stored["expires"] - (clock.now + dt.timedelta(hours=1))) < dt.timedelta(
        milliseconds=2
    )
    clock.advance(3601)
    assert json.loads(await text(client, "/peek"))["new"] is True
    await storage.store.aclose()


async def test_default_browser_session_lifetime_is_14_days(
    client: Client, clock: Any, collection: Any
) -> None:
    await text(client, "/visit")
    stored = doc(collection, cookie(client))
    assert abs(stored["expires"] - (clock.now + dt.timedelta(days=14))) < dt.timedelta(
        milliseconds=2
    )


async def test_storage_level_expiry(storage: MongoDBStorage, clock: Any) -> None:
    request = make_mocked_request("GET", "/")
    session = await storage.load_session(request)
    session["k"] = "v"
    session.max_age = 10
    response = web.Response()
    await storage.save_session(request, response, session)
    sid = response.cookies[COOKIE].value

    def arriving() -> web.Request:
        return make_mocked_request("GET", "/", headers={"Cookie": f"{COOKIE}={sid}"})

    clock.advance(9)
    assert dict(await storage.load_session(arriving())) == {"k": "v"}
    clock.advance(2)
    assert (await storage.load_session(arriving())).new


# -- values and mistakes ----------------------------------------------------------------------


async def test_values_read_back_as_json_gives_them(client: Client, storage: MongoDBStorage) -> None:
    request = make_mocked_request("GET", "/")
    session = await storage.load_session(request)
    session["data"] = {"tuple": (1, 2), "$where": 1, "a.b": [None, 1.5, "ü"]}
    response = web.Response()
    await storage.save_session(request, response, session)
    sid = response.cookies[COOKIE].value
    loaded = await storage.load_session(
        make_mocked_request("GET", "/", headers={"Cookie": f"{COOKIE}={sid}"})
    )
    assert loaded["data"] == {"tuple": [1, 2], "$where": 1, "a.b": [None, 1.5, "ü"]}


async def test_unstorable_value_writes_nothing(
    client: Client, storage: MongoDBStorage, collection: Any
) -> None:
    response = await client.get("/put-set")
    assert response.status == 500
    assert collection.count_documents({}) == 0
    await text(client, "/visit")
    sid = cookie(client)
    assert (await client.get("/put-set")).status == 500
    assert doc(collection, sid)["value"]["session"] == {"visits": 1}  # unchanged
    # Replacing the session with one that cannot be stored keeps the old one.
    request = make_mocked_request("GET", "/", headers={"Cookie": f"{COOKIE}={sid}"})
    await storage.load_session(request)
    session = await storage.new_session()
    session["tags"] = {"a"}
    with pytest.raises(SerializationError):
        await storage.save_session(request, web.Response(), session)
    assert doc(collection, sid) is not None


async def test_custom_encoder_and_decoder(manager_options: dict[str, Any]) -> None:
    storage = MongoDBStorage(
        encoder=lambda value: json.dumps(value, default=sorted), **manager_options
    )
    request = make_mocked_request("GET", "/")
    session = await storage.load_session(request)
    session["tags"] = {"b", "a"}
    response = web.Response()
    await storage.save_session(request, response, session)
    sid = response.cookies[COOKIE].value
    loaded = await storage.load_session(
        make_mocked_request("GET", "/", headers={"Cookie": f"{COOKIE}={sid}"})
    )
    assert loaded["tags"] == ["a", "b"]
    await storage.store.aclose()


async def test_bad_session_max_age_is_refused(storage: MongoDBStorage) -> None:
    for bad in (0, -5, "soon"):
        request = make_mocked_request("GET", "/")
        session = await storage.load_session(request)
        session["k"] = 1
        session.max_age = bad  # type: ignore[assignment]
        with pytest.raises(ConfigurationError, match="max_age"):
            await storage.save_session(request, web.Response(), session)


async def test_set_new_identity_is_refused(storage: MongoDBStorage) -> None:
    request = make_mocked_request("GET", "/")
    session = await storage.load_session(request)
    session.set_new_identity("chosen-by-the-app")
    session["k"] = 1
    with pytest.raises(ConfigurationError, match="set_new_identity"):
        await storage.save_session(request, web.Response(), session)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_age": 0}, "max_age"),
        ({"max_age": -1}, "max_age"),
        ({"max_age": "a day"}, "max_age"),
        ({"cookie_name": ""}, "cookie_name"),
        ({"encoder": "json"}, "encoder"),
        ({"urii": "mongodb://x"}, "did you mean uri"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        MongoDBStorage(**options)


def test_manager_and_manager_options_are_refused(
    async_manager: AsyncMongoManager, manager: MongoManager
) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        MongoDBStorage(async_manager, uri="mongodb://127.0.0.1")
    with pytest.raises(ConfigurationError, match="AsyncMongoManager"):
        MongoDBStorage(manager)  # type: ignore[arg-type]


async def test_shared_manager_nests_the_prefix(
    async_manager: AsyncMongoManager, collection: Any
) -> None:
    storage = MongoDBStorage(async_manager.with_prefix("app1:"), key_prefix="s:")
    request = make_mocked_request("GET", "/")
    session = await storage.load_session(request)
    session["k"] = 1
    response = web.Response()
    await storage.save_session(request, response, session)
    assert collection.find_one()["_id"] == "app1:s:" + response.cookies[COOKIE].value


def test_repr_hides_the_password() -> None:
    storage = MongoDBStorage(uri="mongodb://user:hunter2@db.example.com/app")
    assert "hunter2" not in repr(storage) and "AIOHTTP_SESSION" in repr(storage)


# -- outage -----------------------------------------------------------------------------------


async def test_outage_fails_the_request_within_the_timeout(
    aiohttp_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="aiohttp.server")  # the 500's traceback
    storage = MongoDBStorage(
        uri=f"mongodb://127.0.0.1:{free_port()}/x",
        connection_options={"serverSelectionTimeoutMS": 300},
    )
    client = await aiohttp_client(make_app(storage))
    loop = asyncio.get_running_loop()
    started = loop.time()
    # A new visitor: nothing to load; saving the new session fails.
    assert (await client.get("/visit")).status == 500
    # A returning visitor: loading fails; a handler may catch it.
    set_cookie(client, secrets.token_urlsafe(32))
    assert (await client.get("/visit")).status == 500
    response = await client.get("/degraded")
    assert response.status == 503 and await response.text() == "sessions unavailable"
    assert loop.time() - started < 5  # three requests, each bounded by 0.3 s
    assert cookie(client) is not None  # the user's cookie is left alone
    await storage.store.aclose()
