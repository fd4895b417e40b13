"""The native Pyramid session factory, through real Pyramid apps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.interfaces import ISession, ISessionFactory
from pyramid.request import Request
from zope.interface.verify import verifyObject

from mongo_session_backends import ConfigurationError, MongoManager, SerializationError
from mongo_session_backends.pyramid import MongoSessionFactory, session_factory_from_settings

from .contract import MISSING, StoreContract

SECRET = "a-secret-of-enough-length"


def make_app(factory: Any = None, settings: dict[str, Any] | None = None) -> webtest.TestApp:
    """A Pyramid app whose view runs ``registry.op(session)``."""
    config = Configurator(settings=settings or {})
    if factory is not None:
        config.set_session_factory(factory)
    else:
        config.include("mongo_session_backends.pyramid")

    def run(request: Any) -> Any:
        result = request.registry.op(request.session)
        request.registry.result = result
        request.response.text = repr(result)
        return request.response

    def fail(request: Any) -> Any:
        request.session["during_error"] = True
        raise RuntimeError("view failed")

    config.add_route("run", "/")
    config.add_view(run, route_name="run")

    def failed(exc: Exception, request: Any) -> Any:
        request.response.status_int = 500
        return request.response

    config.add_route("fail", "/fail")
    config.add_view(fail, route_name="fail")
    config.add_view(failed, context=RuntimeError)
    return webtest.TestApp(config.make_wsgi_app())


def call(app: webtest.TestApp, op: Callable[[Any], Any], **kwargs: Any) -> Any:
    app.app.registry.op = op
    response = app.get("/", **kwargs)
    return app.app.registry.result, response


@pytest.fixture
def factory(manager: MongoManager) -> MongoSessionFactory:
    return MongoSessionFactory(SECRET, manager=manager, timeout=600, reissue_time=60)


@pytest.fixture
def app(factory: MongoSessionFactory) -> webtest.TestApp:
    return make_app(factory)


class SessionDriver:
    """Each operation is one request through a real Pyramid app."""

    def __init__(self, app: webtest.TestApp) -> None:
        self.app = app

    def put(self, key: Any, value: Any, timeout: int | None = None) -> None:
        call(self.app, lambda s: s.__setitem__(key, value))

    def fetch(self, key: Any) -> Any:
        return call(self.app, lambda s: s.get(key, MISSING))[0]

    def remove(self, key: Any) -> None:
        call(self.app, lambda s: s.pop(key))

    def contains(self, key: Any) -> bool:
        return bool(call(self.app, lambda s: key in s)[0])


class TestSessionContract(StoreContract):
    @pytest.fixture
    def driver(self, manager: MongoManager) -> SessionDriver:
        factory = MongoSessionFactory(SECRET, manager=manager, timeout=10, reissue_time=None)
        return SessionDriver(make_app(factory))

    # Session keys are dict keys: bytes and str keys differ, and any hashable
    # the serializer can store is valid.
    @pytest.mark.parametrize("key", ["ключ", "$where", "a.b", ".*", "x" * 1000, b"k", 256])
    def test_unusual_keys(self, driver: SessionDriver, key: Any) -> None:  # type: ignore[override]
        driver.put(key, "v")
        assert driver.fetch(key) == "v"

    def test_bad_key_types(self, driver: SessionDriver) -> None:  # type: ignore[override]
        with pytest.raises(TypeError):
            driver.put({"$gt": ""}, "v")  # unhashable, as in a dict
        with pytest.raises(SerializationError):
            driver.put(object(), "v")


def test_interfaces(factory: MongoSessionFactory) -> None:
    request = Request.blank("/")
    request.registry = None
    verifyObject(ISessionFactory, factory)
    verifyObject(ISession, factory(request))


def test_persistence_and_lazy_creation(app: webtest.TestApp, collection: Any) -> None:
    _, response = call(app, lambda s: s.get("x"))
    assert "Set-Cookie" not in response.headers
    assert collection.count_documents({}) == 0
    call(app, lambda s: s.__setitem__("user", "alice"))
    assert collection.count_documents({}) == 1
    assert call(app, lambda s: s["user"])[0] == "alice"
    assert call(app, lambda s: (s.new, type(s.created).__name__))[0] == (False, "float")
    doc = collection.find_one()
    assert doc["_id"].startswith("session:") and doc["value"]["d"] == {"user": "alice"}


def test_cookie_attributes(app: webtest.TestApp) -> None:
    _, response = call(app, lambda s: s.__setitem__("a", 1))
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Path=/" in cookie and "Max-Age" not in cookie
    assert "Cookie" in response.headers["Vary"]
    sid = cookie.split("=", 1)[1].split(";")[0]
    assert len(sid) > 64  # signed 256-bit id


def test_session_ids_are_random_and_long(app: webtest.TestApp, collection: Any) -> None:
    for _ in range(3):
        fresh = webtest.TestApp(app.app)
        call(fresh, lambda s: s.__setitem__("a", 1))
    ids = [d["_id"][len("session:") :] for d in collection.find()]
    assert len(set(ids)) == 3 and all(len(i) >= 43 for i in ids)


def test_unchanged_session_is_not_written(app: webtest.TestApp, counter: Any) -> None:
    call(app, lambda s: s.__setitem__("a", 1))
    counter.reset()
    _, response = call(app, lambda s: s.get("a"))
    assert counter.commands == ["find"]
    assert "Set-Cookie" not in response.headers


def test_forgotten_changed_is_not_lost(app: webtest.TestApp) -> None:
    call(app, lambda s: s.__setitem__("items", []))
    call(app, lambda s: s["items"].append(1))  # no changed() call
    assert call(app, lambda s: s["items"])[0] == [1]


def test_changed_marks_dirty(app: webtest.TestApp, counter: Any) -> None:
    call(app, lambda s: s.__setitem__("a", 1))
    counter.reset()
    call(app, lambda s: s.changed())
    assert counter.commands == ["find", "update"]


def test_reissue_throttling(app: webtest.TestApp, counter: Any, clock: Any) -> None:
    call(app, lambda s: s.__setitem__("a", 1))
    for _ in range(3):
        clock.advance(19)
        counter.reset()
        call(app, lambda s: s.get("a"))
        assert counter.commands == ["find"]  # within reissue_time: no write
    clock.advance(4)
    counter.reset()
    call(app, lambda s: s.get("a"))
    assert counter.commands == ["find", "update"]  # one touch
    counter.reset()
    call(app, lambda s: s.get("a"))
    assert counter.commands == ["find"]
    clock.advance(590)  # still alive thanks to the touch
    assert call(app, lambda s: s.get("a"))[0] == 1


def test_expiry(app: webtest.TestApp, clock: Any) -> None:
    call(app, lambda s: s.__setitem__("a", 1))
    clock.advance(601)
    assert call(app, lambda s: (s.get("a"), s.new))[0] == (None, True)


def test_timeout_none_never_expires(manager: MongoManager, clock: Any) -> None:
    app = make_app(MongoSessionFactory(SECRET, manager=manager, timeout=None))
    call(app, lambda s: s.__setitem__("a", 1))
    clock.advance(10**8)
    assert call(app, lambda s: s.get("a"))[0] == 1


def test_invalidate(app: webtest.TestApp, collection: Any) -> None:
    call(app, lambda s: s.__setitem__("user", "alice"))
    old_cookie = app.cookies["session"]
    old_id = collection.find_one()["_id"]

    def invalidate_and_set(s: Any) -> None:
        s.invalidate()
        assert collection.count_documents({"_id": old_id}) == 0  # gone at once
        s["user"] = "bob"

    call(app, invalidate_and_set)
    assert collection.find_one()["_id"] != old_id
    assert app.cookies["session"] != old_cookie
    assert call(app, lambda s: s.get("user"))[0] == "bob"
    replay = webtest.TestApp(app.app)
    replay.set_cookie("session", old_cookie)
    assert call(replay, lambda s: s.get("user"))[0] is None


def test_invalidate_to_empty_deletes_cookie(app: webtest.TestApp, collection: Any) -> None:
    call(app, lambda s: s.__setitem__("user", "alice"))
    _, response = call(app, lambda s: s.invalidate())
    assert collection.count_documents({}) == 0
    assert "Max-Age=0" in response.headers["Set-Cookie"]


def test_flash_queues(app: webtest.TestApp) -> None:
    call(app, lambda s: s.flash("one"))
    call(app, lambda s: s.flash("one", allow_duplicate=False))
    call(app, lambda s: s.flash("err", "errors"))
    assert call(app, lambda s: s.peek_flash())[0] == ["one"]
    assert call(app, lambda s: s.pop_flash())[0] == ["one"]
    assert call(app, lambda s: s.pop_flash())[0] == []
    assert call(app, lambda s: s.pop_flash("errors"))[0] == ["err"]


def test_csrf_with_pyramid_default_policy(factory: MongoSessionFactory) -> None:
    config = Configurator()
    config.set_session_factory(factory)
    config.set_default_csrf_options(require_csrf=True)

    def form(request: Any) -> Any:
        request.response.text = request.session.get_csrf_token()
        return request.response

    def submit(request: Any) -> Any:
        request.response.text = "accepted"
        return request.response

    config.add_route("form", "/form")
    config.add_view(form, route_name="form", request_method="GET")
    config.add_route("submit", "/submit")
    config.add_view(submit, route_name="submit", request_method="POST")
    app = webtest.TestApp(config.make_wsgi_app())
    token = app.get("/form").text
    assert len(token) == 64 and app.get("/form").text == token
    assert app.post("/submit", {"csrf_token": token}).text == "accepted"
    app.post("/submit", {"csrf_token": "forged"}, status=400)


@pytest.mark.parametrize("cookie", ["garbage", "x" * 200, "", "a.b.c"])
def test_tampered_cookie(app: webtest.TestApp, counter: Any, cookie: str) -> None:
    call(app, lambda s: s.__setitem__("a", 1))
    good = app.cookies["session"]
    for value in (cookie, good[:-2] + ("AA" if not good.endswith("AA") else "BB")):
        intruder = webtest.TestApp(app.app)
        intruder.set_cookie("session", value)
        counter.reset()
        result, response = call(intruder, lambda s: (s.get("a"), s.new))
        assert result == (None, True) and response.status_code == 200
        assert counter.commands == []  # never looked up


def test_foreign_secret_cookie(manager: MongoManager, app: webtest.TestApp) -> None:
    other = make_app(MongoSessionFactory("another-secret-entirely", manager=manager))
    call(other, lambda s: s.__setitem__("a", "theirs"))
    app.set_cookie("session", other.cookies["session"])
    assert call(app, lambda s: s.get("a"))[0] is None


def test_unstorable_value_fails_at_set(app: webtest.TestApp) -> None:
    with pytest.raises(SerializationError, match="'bad'"):
        call(app, lambda s: s.__setitem__("bad", object()))
    with pytest.raises(SerializationError):
        call(app, lambda s: s.update(bad=object()))


def test_set_on_exception(manager: MongoManager, collection: Any) -> None:
    app = make_app(MongoSessionFactory(SECRET, manager=manager, set_on_exception=False))
    app.get("/fail", status=500)
    assert collection.count_documents({}) == 0
    app = make_app(MongoSessionFactory(SECRET, manager=manager))
    app.get("/fail", status=500)
    assert collection.count_documents({}) == 1


def test_late_write_does_not_resurrect(app: webtest.TestApp, collection: Any) -> None:
    call(app, lambda s: s.__setitem__("a", 1))

    def destroyed_elsewhere(s: Any) -> None:
        collection.delete_many({})  # another request logged out meanwhile
        s["a"] = 2

    call(app, destroyed_elsewhere)
    assert collection.count_documents({}) == 0


def test_max_age_cookie(manager: MongoManager) -> None:
    app = make_app(MongoSessionFactory(SECRET, manager=manager, max_age=3600))
    _, response = call(app, lambda s: s.__setitem__("a", 1))
    assert "Max-Age=3600" in response.headers["Set-Cookie"]


# -- settings -------------------------------------------------------------------


@pytest.fixture
def settings(mongodb_uri: str, database_name: str) -> dict[str, str]:
    return {
        "mongo_sessions.uri": mongodb_uri,
        "mongo_sessions.database_name": database_name,
        "mongo_sessions.collection": "web_sessions",
        "mongo_sessions.secret": SECRET,
        "mongo_sessions.timeout": "900",
        "mongo_sessions.reissue_time": "30",
        "mongo_sessions.cookie_name": "sid",
        "mongo_sessions.cookie_max_age": "7200",
        "mongo_sessions.cookie_secure": "true",
        "mongo_sessions.cookie_httponly": "yes",
        "mongo_sessions.cookie_samesite": "Strict",
        "mongo_sessions.serializer": "json",
        "mongo_sessions.connection_options.maxPoolSize": "5",
        "unrelated.setting": "kept out",
    }


def test_include_with_ini_settings(
    settings: dict[str, str], admin_client: Any, database_name: str
) -> None:
    app = make_app(settings=settings)
    _, response = call(app, lambda s: s.__setitem__("a", [1, 2]))
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("sid=") and "Max-Age=7200" in cookie and "secure" in cookie.lower()
    assert "SameSite=Strict" in cookie
    doc = admin_client[database_name]["web_sessions"].find_one()
    assert isinstance(doc["value"], str)  # the json serializer
    factory = session_factory_from_settings(settings)
    assert factory.timeout == 900 and factory.reissue_time == 30


def test_secret_from_environment(settings: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_SECRET", "from-the-environment-123")
    settings["mongo_sessions.secret"] = "env:SESSION_SECRET"
    assert session_factory_from_settings(settings)
    monkeypatch.delenv("SESSION_SECRET")
    with pytest.raises(ConfigurationError, match="SESSION_SECRET"):
        session_factory_from_settings(settings)


@pytest.mark.parametrize(
    "name, value",
    [
        ("mongo_sessions.timout", "10"),
        ("mongo_sessions.timeout", "ten"),
        ("mongo_sessions.timeout", "0"),
        ("mongo_sessions.cookie_secure", "maybe"),
        ("mongo_sessions.cookie_max_age", "1.5x"),
        ("mongo_sessions.secret", "short"),
        ("mongo_sessions.cleanup", "sometimes"),
    ],
)
def test_bad_settings(settings: dict[str, str], name: str, value: str) -> None:
    settings[name] = value
    with pytest.raises(ConfigurationError):
        session_factory_from_settings(settings)


def test_missing_secret(settings: dict[str, str]) -> None:
    del settings["mongo_sessions.secret"]
    with pytest.raises(ConfigurationError, match="secret"):
        session_factory_from_settings(settings)
