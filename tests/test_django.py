"""Django: the session engine and cache backend.

Django's own contract suites run against both, vendored unmodified from the
Django source distribution in ``tests/django_suites`` (with Django's
licence): ``SessionTestsMixin`` from ``tests/sessions_tests`` and
``BaseCacheTests`` from ``tests/cache``, the latter three times: native
values, the signed pickle serializer, and every call through the ``a*``
methods. Their ``time.sleep`` moves the test clock instead of sleeping.
Then an app through Django's test clients (WSGI and ASGI), the shared
contract, settings, the command and the number of commands per operation.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import types
import warnings
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock, skip

import django
import pytest
from django.conf import settings

ENGINE = "mongo_session_backends.django.session"
BACKEND = "mongo_session_backends.django.cache.MongoDBCache"

if not settings.configured:
    settings.configure(
        SECRET_KEY="django-tests-only-" + "k" * 40,
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "mongo_session_backends.django",
            "tests.django_suites.sessions_tests",
            "tests.django_suites.cache",
        ],
        # Shared between threads: ASGI requests run their sync parts in a worker thread.
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": "file:mongo_sessions_django?mode=memory&cache=shared",
            }
        },
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        ROOT_URLCONF=__name__,
        SESSION_ENGINE=ENGINE,
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
    )
    django.setup()

from django.contrib.auth import (  # noqa: E402
    aauthenticate,
    alogin,
    alogout,
    authenticate,
    login,
    logout,
)
from django.contrib.auth.models import User  # noqa: E402
from django.core import checks  # noqa: E402
from django.core.cache import caches  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.management.base import CommandError  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import AsyncClient, Client, SimpleTestCase, TestCase  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import path  # noqa: E402

import mongo_session_backends.adapter as adapter_module  # noqa: E402
from mongo_session_backends import (  # noqa: E402
    AsyncMongoManager,
    ConfigurationError,
    MongoManager,
    MongoSessionError,
    SerializationError,
)
from mongo_session_backends.django.cache import CacheKeyMissing, MongoDBCache  # noqa: E402
from mongo_session_backends.django.session import (  # noqa: E402
    SessionStore,
    alog_out_everywhere,
    alog_out_other_sessions,
    log_out_everywhere,
    log_out_other_sessions,
    other_sessions,
)

from .contract import MISSING, StoreContract  # noqa: E402
from .django_suites.cache import tests as cache_suite  # noqa: E402
from .django_suites.sessions_tests.tests import SessionTestsMixin  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECRET = "a pickle secret of at least 16 bytes"


# -- the app ---------------------------------------------------------------------


def visits(request: HttpRequest) -> HttpResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(f"{request.session['visits']} visits")


def login_view(request: HttpRequest) -> HttpResponse:
    user = authenticate(request, username=request.POST["username"], password="pw")
    login(request, user)
    return HttpResponse("logged in")


def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse("logged out")


def whoami(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.user.get_username() or "anonymous")


async def avisits(request: HttpRequest) -> HttpResponse:
    count = await request.session.aget("visits", 0) + 1
    await request.session.aset("visits", count)
    return HttpResponse(f"{count} visits")


async def alogin_view(request: HttpRequest) -> HttpResponse:
    user = await aauthenticate(request, username=request.POST["username"], password="pw")
    await alogin(request, user)
    return HttpResponse("logged in")


async def alogout_view(request: HttpRequest) -> HttpResponse:
    await alogout(request)
    return HttpResponse("logged out")


async def awhoami(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    return HttpResponse(user.get_username() or "anonymous")


def others(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(len(other_sessions(request))))


def log_out_others(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(log_out_other_sessions(request)))


async def alog_out_others(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(await alog_out_other_sessions(request)))


urlpatterns = [
    path("visits/", visits),
    path("others/", others),
    path("log-out-others/", log_out_others),
    path("alog-out-others/", alog_out_others),
    path("login/", login_view),
    path("logout/", logout_view),
    path("whoami/", whoami),
    path("avisits/", avisits),
    path("alogin/", alogin_view),
    path("alogout/", alogout_view),
    path("awhoami/", awhoami),
]


# -- settings for each test ------------------------------------------------------------


def close_shared() -> None:
    """Close and forget the managers the adapter shares, so each test starts afresh."""
    for value in list(adapter_module._shared.values()):
        if isinstance(value, MongoManager):
            value.close()
        elif isinstance(value, AsyncMongoManager):
            asyncio.run(value.aclose())
    adapter_module._shared.clear()


@pytest.fixture(scope="module", autouse=True)
def database() -> Iterator[None]:
    call_command("migrate", run_syncdb=True, verbosity=0)
    yield
    close_shared()


@pytest.fixture
def options(database_name: str, clock: Any, counter: Any) -> dict[str, Any]:
    """The manager options of this test: its database, clock and command counter."""
    return {
        "database_name": database_name,
        "clock": clock,
        "connection_options": {"event_listeners": [counter]},
    }


def caches_setting(uri: str, options: dict[str, Any], **params: Any) -> dict[str, Any]:
    """Django's test CACHES (without the culling caches) on our backend."""
    setting: dict[str, Any] = cache_suite.caches_setting_for_tests(
        BACKEND=BACKEND,
        LOCATION=uri,
        OPTIONS=options,
        exclude={"cull", "zero_cull"},
        **params,
    )
    # Django's suite runs with its tests directory on the path; here it is a package.
    setting["custom_key2"]["KEY_FUNCTION"] = cache_suite.custom_key_func
    return setting


@pytest.fixture
def mongo_settings(mongodb_uri: str, options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """MONGO_SESSIONS and CACHES on this test's database; yields MONGO_SESSIONS."""
    sessions = {"LOCATION": mongodb_uri, "OPTIONS": options}
    with override_settings(MONGO_SESSIONS=sessions, CACHES=caches_setting(mongodb_uri, options)):
        yield sessions
    close_shared()


def session_docs(collection: Any) -> list[dict[str, Any]]:
    return list(collection.find({"ns": "django-session:"}))


# -- Django's session suite ------------------------------------------------------------


class TestDjangoSessionSuite(SessionTestsMixin, SimpleTestCase):  # type: ignore[misc]
    """Every ``SessionTestsMixin`` case of Django 5.2 against the engine; all apply."""

    backend = SessionStore

    @pytest.fixture(autouse=True)
    def _settings(self, mongo_settings: Any) -> None:
        pass


# -- Django's cache suite -------------------------------------------------------------


def _needs_pickle(reason: str) -> Any:
    return skip(f"needs the pickle serializer ({reason}); the pickle run covers it")


class CacheSuite(cache_suite.BaseCacheTests):  # type: ignore[misc]
    """``BaseCacheTests`` on our backend; the cases that cannot apply are skipped here."""

    cache_options: ClassVar[dict[str, Any]] = {}

    @pytest.fixture(autouse=True)
    def _settings(self, mongodb_uri: str, options: dict[str, Any], clock: Any) -> Iterator[None]:
        setting = caches_setting(mongodb_uri, {**options, **self.cache_options})
        # The suite's sleeps move the clock the backend reads instead.
        fake_time = types.SimpleNamespace(sleep=clock.advance, time=time.time)
        with override_settings(CACHES=setting), mock.patch.object(cache_suite, "time", fake_time):
            yield
        close_shared()

    reason_cull = "no culling: entries leave when they expire, through the TTL index"
    test_cull = skip(reason_cull)(cache_suite.BaseCacheTests.test_cull)
    test_zero_cull = skip(reason_cull)(cache_suite.BaseCacheTests.test_zero_cull)
    test_cull_delete_when_store_empty = skip(reason_cull)(
        cache_suite.BaseCacheTests.test_cull_delete_when_store_empty
    )
    reason_pickle_error = (
        "a value the serializer refuses raises this library's SerializationError (a "
        "TypeError), not pickle.PickleError; test_unstorable_values checks it"
    )
    test_add_fail_on_pickleerror = skip(reason_pickle_error)(
        cache_suite.BaseCacheTests.test_add_fail_on_pickleerror
    )
    test_set_fail_on_pickleerror = skip(reason_pickle_error)(
        cache_suite.BaseCacheTests.test_set_fail_on_pickleerror
    )


class TestDjangoCacheSuiteNative(CacheSuite, TestCase):  # type: ignore[misc]
    """Native BSON values (the default)."""

    test_data_types = _needs_pickle("a function and a class")(CacheSuite.test_data_types)
    test_cache_read_for_model_instance = _needs_pickle("a model instance")(
        CacheSuite.test_cache_read_for_model_instance
    )
    test_cache_write_for_model_instance_with_deferred = _needs_pickle("a queryset")(
        CacheSuite.test_cache_write_for_model_instance_with_deferred
    )
    test_cache_read_for_model_instance_with_deferred = _needs_pickle("a queryset")(
        CacheSuite.test_cache_read_for_model_instance_with_deferred
    )
    test_cache_write_unpicklable_object = _needs_pickle("an HttpResponse")(
        CacheSuite.test_cache_write_unpicklable_object
    )


class TestDjangoCacheSuitePickle(CacheSuite, TestCase):  # type: ignore[misc]
    """The signed pickle serializer, opted in through OPTIONS."""

    cache_options: ClassVar[dict[str, Any]] = {"serializer": "pickle", "serializer_secret": SECRET}


class AsyncCalls:
    """A cache whose methods run the backend's ``a*`` coroutines on one event loop."""

    NAMES = frozenset(
        "add get set touch delete get_many set_many delete_many has_key incr decr clear "
        "get_or_set incr_version decr_version close".split()
    )

    def __init__(self, backend: Any, loop: asyncio.AbstractEventLoop) -> None:
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "_loop", loop)

    def __getattr__(self, name: str) -> Any:
        if name not in self.NAMES:
            return getattr(self._backend, name)
        coroutine = getattr(self._backend, "a" + name)
        return lambda *args, **kwargs: self._loop.run_until_complete(coroutine(*args, **kwargs))

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._backend, name, value)

    def __contains__(self, key: Any) -> bool:
        return bool(self.has_key(key))


class TestDjangoCacheSuiteAsync(TestDjangoCacheSuitePickle):
    """Every call of the suite through the native ``a*`` methods (and the async manager)."""

    reason_queryset = (
        "pickling an unevaluated QuerySet runs a query, which Django refuses inside an "
        "event loop (SynchronousOnlyOperation); the pickle run covers it"
    )
    test_cache_write_for_model_instance_with_deferred = skip(reason_queryset)(
        CacheSuite.test_cache_write_for_model_instance_with_deferred
    )
    test_cache_read_for_model_instance_with_deferred = skip(reason_queryset)(
        CacheSuite.test_cache_read_for_model_instance_with_deferred
    )

    def setUp(self) -> None:
        super().setUp()
        loop = asyncio.new_event_loop()

        class Caches:
            def __getitem__(self, alias: str) -> AsyncCalls:
                return AsyncCalls(caches[alias], loop)

        patches = [
            mock.patch.object(cache_suite, "cache", AsyncCalls(caches["default"], loop)),
            mock.patch.object(cache_suite, "caches", Caches()),
        ]
        for patch in patches:
            patch.start()
            self.addCleanup(patch.stop)
        self.addCleanup(loop.close)


# -- the shared contract through the cache ------------------------------------------------


class CacheDriver:
    """The contract's driver on a Django cache (``call`` runs each operation)."""

    def __init__(self, cache: MongoDBCache, call: Callable[[str, tuple[Any, ...]], Any]) -> None:
        self.cache = cache
        self.call = call

    def put(self, key: Any, value: Any, timeout: int | None = None) -> None:
        args = (key, value) if timeout is None else (key, value, timeout)
        self.call("set", args)

    def fetch(self, key: Any) -> Any:
        return self.call("get", (key, MISSING))

    def remove(self, key: Any) -> None:
        self.call("delete", (key,))

    def contains(self, key: Any) -> bool:
        return bool(self.call("has_key", (key,)))


class DjangoCacheContract(StoreContract):
    @pytest.mark.skip(reason="Django's KEY_FUNCTION makes a string of any key")
    def test_bad_key_types(self) -> None:  # type: ignore[override]
        pass

    @pytest.mark.parametrize("key", ["ключ", "a/b c:d", "$where", "a.b", ".*", "x" * 1000])
    def test_unusual_keys(self, driver: Any, key: str) -> None:
        # Bytes keys are formatted too (b'...'), so only str keys round-trip.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # memcached portability warnings
            driver.put(key, "v")
            assert driver.fetch(key) == "v"


class TestCacheContract(DjangoCacheContract):
    @pytest.fixture
    def driver(self, mongodb_uri: str, options: dict[str, Any]) -> Iterator[CacheDriver]:
        cache = MongoDBCache(mongodb_uri, {"OPTIONS": options})
        yield CacheDriver(cache, lambda name, args: getattr(cache, name)(*args))
        close_shared()


class TestAsyncCacheContract(DjangoCacheContract):
    @pytest.fixture
    def driver(self, mongodb_uri: str, options: dict[str, Any]) -> Iterator[CacheDriver]:
        cache = MongoDBCache(mongodb_uri, {"OPTIONS": options})
        loop = asyncio.new_event_loop()

        def call(name: str, args: tuple[Any, ...]) -> Any:
            return loop.run_until_complete(getattr(cache, "a" + name)(*args))

        yield CacheDriver(cache, call)
        loop.run_until_complete(cache._stores.async_.aclose())
        loop.close()
        close_shared()


# -- an app through Django's test clients ------------------------------------------------


@pytest.fixture
def user() -> Iterator[User]:
    made = User.objects.create_user("ada", password="pw")
    yield made
    made.delete()


def test_login_keeps_data_under_a_new_key_and_logout_deletes(
    mongo_settings: Any, user: User, collection: Any
) -> None:
    client = Client()
    assert client.get("/visits/").content == b"1 visits"
    before = client.cookies["sessionid"].value
    assert len(before) == 43  # 256 bits, URL-safe
    client.post("/login/", {"username": "ada"})
    after = client.cookies["sessionid"].value
    assert after != before
    docs = session_docs(collection)
    assert [d["_id"] for d in docs] == ["django-session:" + after]  # the old id is gone
    assert docs[0]["value"]["visits"] == 1  # the data came along
    # Stored as BSON, so sessions are queryable by their user.
    assert collection.count_documents({"value._auth_user_id": str(user.pk)}) == 1
    assert client.get("/visits/").content == b"2 visits"
    assert client.get("/whoami/").content == b"ada"
    client.post("/logout/")
    assert session_docs(collection) == []
    assert client.get("/whoami/").content == b"anonymous"


def test_expiry_follows_the_clock(mongo_settings: Any, clock: Any, collection: Any) -> None:
    client = Client()
    with override_settings(SESSION_COOKIE_AGE=60):
        assert client.get("/visits/").content == b"1 visits"
        clock.advance(59)
        assert client.get("/visits/").content == b"2 visits"  # each save renews
        clock.advance(61)
        assert client.get("/visits/").content == b"1 visits"
    assert len(session_docs(collection)) == 2  # the expired one waits for the TTL monitor


def test_a_request_is_one_read_and_one_write(mongo_settings: Any, counter: Any) -> None:
    client = Client()
    client.get("/visits/")
    counter.reset()
    client.get("/visits/")
    assert counter.commands == ["find", "update"]


async def test_asgi_requests_login_and_logout(
    mongo_settings: Any, user: User, collection: Any
) -> None:
    client = AsyncClient()
    assert (await client.get("/avisits/")).content == b"1 visits"
    assert (await client.get("/avisits/")).content == b"2 visits"
    before = client.cookies["sessionid"].value
    await client.post("/alogin/", {"username": "ada"})
    after = client.cookies["sessionid"].value
    assert after != before
    assert [d["_id"] for d in session_docs(collection)] == ["django-session:" + after]
    assert (await client.get("/awhoami/")).content == b"ada"
    assert (await client.get("/avisits/")).content == b"3 visits"
    await client.post("/alogout/")
    assert session_docs(collection) == []
    assert (await client.get("/awhoami/")).content == b"anonymous"


async def test_test_client_alogin(mongo_settings: Any, user: User, collection: Any) -> None:
    client = AsyncClient()
    assert await client.alogin(username="ada", password="pw")
    assert (await client.get("/awhoami/")).content == b"ada"
    await client.alogout()
    assert session_docs(collection) == []


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a sync method was called from async code")


async def test_async_methods_are_native(
    mongo_settings: Any, monkeypatch: pytest.MonkeyPatch, counter: Any
) -> None:
    for name in ("load", "exists", "create", "save", "delete"):
        monkeypatch.setattr(SessionStore, name, _refuse)
    store = SessionStore()
    await store.aset("a", 1)
    await store.asave()  # creates
    key = store.session_key
    assert await store.aexists(key)
    again = SessionStore(key)
    assert await again.aget("a") == 1
    await again.aset("a", 2)
    counter.reset()
    await again.asave()
    assert counter.commands == ["update"]
    await again.acycle_key()
    assert not await again.aexists(key) and await again.aget("a") == 2
    await again.adelete()
    assert not await again.aexists(again.session_key)
    await SessionStore.aclear_expired()


# -- commands per operation ---------------------------------------------------------------


def test_one_command_per_session_operation(mongo_settings: Any, counter: Any) -> None:
    store = SessionStore()
    store.exists("a-key-to-warm-up")  # connects and prepares the collection
    store["a"] = 1
    operations: dict[str, Callable[[], Any]] = {
        "create": store.save,
        "load": lambda: SessionStore(store.session_key).load(),
        "save": store.save,
        "exists": lambda: store.exists(store.session_key),
        "delete": store.delete,
        "clear_expired": SessionStore.clear_expired,
    }
    for name, operation in operations.items():
        counter.reset()
        operation()
        expected = 0 if name == "clear_expired" else 1  # the TTL index does the work
        assert len(counter.commands) == expected, (name, counter.commands)


#: Each cache operation with arguments, called as itself and as its ``a*`` coroutine.
CACHE_CALLS: dict[str, tuple[Any, ...]] = {
    "add": ("new", 1),
    "get": ("k",),
    "set": ("k", 1),
    "touch": ("k", 10),
    "delete": ("new",),
    "get_many": (["k", "n"],),
    "set_many": ({"a": 1, "b": 2},),
    "delete_many": (["a", "b"],),
    "has_key": ("k",),
    "clear": (),
}


def test_one_command_per_cache_operation(mongo_settings: Any, counter: Any) -> None:
    cache = caches["default"]
    cache.set("n", 1)  # connects and prepares the collection
    for name, args in CACHE_CALLS.items():
        counter.reset()
        getattr(cache, name)(*args)
        assert len(counter.commands) == 1, (name, counter.commands)
    cache.set("n", 1)
    counter.reset()
    assert cache.incr("n") == 2
    assert counter.commands == ["findAndModify"]  # filtered on a live entry: no upsert


async def test_one_command_per_async_cache_operation(mongo_settings: Any, counter: Any) -> None:
    cache = caches["default"]
    await cache.aset("n", 1)
    for name, args in CACHE_CALLS.items():
        counter.reset()
        await getattr(cache, "a" + name)(*args)
        assert len(counter.commands) == 1, (name, counter.commands)
    await cache.aset("n", 1)
    counter.reset()
    assert await cache.adecr("n") == 0
    assert counter.commands == ["findAndModify"]


# -- values --------------------------------------------------------------------------------


def test_unstorable_values(mongodb_uri: str, options: dict[str, Any], user: User) -> None:
    native = MongoDBCache(mongodb_uri, {"OPTIONS": options})
    with pytest.raises(SerializationError, match="serializer='pickle'") as info:
        native.set("user", user)
    assert isinstance(info.value, TypeError)
    pickled = MongoDBCache(
        mongodb_uri, {"OPTIONS": {**options, "serializer": "pickle", "serializer_secret": SECRET}}
    )
    with pytest.raises(SerializationError, match="cannot pickle"):
        pickled.add("k", cache_suite.Unpicklable())
    assert not pickled.has_key("k")
    pickled.set("user", user)
    assert pickled.get("user") == user


def test_tampered_pickle_reads_as_a_miss(
    mongodb_uri: str, options: dict[str, Any], collection: Any
) -> None:
    cache = MongoDBCache(
        mongodb_uri, {"OPTIONS": {**options, "serializer": "pickle", "serializer_secret": SECRET}}
    )
    cache.set("k", {"a": 1})
    collection.update_many({}, {"$set": {"value": b"\x00" * 32 + b"cos\nsystem\n"}})
    assert cache.get("k", "missed") == "missed"


def test_incr_of_a_missing_key_raises_value_error(mongo_settings: Any) -> None:
    cache = caches["default"]
    with pytest.raises(CacheKeyMissing) as info:
        cache.incr("nope")
    assert isinstance(info.value, ValueError) and isinstance(info.value, MongoSessionError)
    assert "nope" not in str(info.value)
    assert not cache.has_key("nope")


def test_clear_keeps_other_prefixes(mongo_settings: Any) -> None:
    caches["default"].set("k", 1)
    caches["prefix"].set("k", 2)
    caches["default"].clear()
    assert caches["prefix"].get("k") == 2
    assert caches["v2"].get("k", version=1) is None


def test_session_data_is_native_bson(mongo_settings: Any, collection: Any) -> None:
    store = SessionStore()
    store.update({"cart": [1, 2], "_auth_user_id": "7", "when": (1, 2)})
    store.save()
    doc = collection.find_one({"_id": "django-session:" + store.session_key})
    assert doc["value"]["cart"] == [1, 2] and doc["value"]["_auth_user_id"] == "7"
    assert SessionStore(store.session_key).load()["when"] == (1, 2)


def test_unstorable_session_value_names_the_way_out(mongo_settings: Any) -> None:
    store = SessionStore()
    store["obj"] = object()
    with pytest.raises(SerializationError, match="serializer='pickle'"):
        store.save()


# -- settings ---------------------------------------------------------------------------------


def test_location_and_secrets_from_the_environment(
    mongodb_uri: str, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_MONGODB_URI", mongodb_uri)
    monkeypatch.setenv("DJANGO_PICKLE_SECRET", SECRET)
    raw = {
        **options,
        "serializer": "pickle",
        "serializer_secret": "env:DJANGO_PICKLE_SECRET",
        "expire_after_seconds": "0",
        "hash_ids": "false",
    }
    cache = MongoDBCache("env:DJANGO_MONGODB_URI", {"OPTIONS": raw})
    cache.set("k", {1, 2})
    assert cache.get("k") == {1, 2}
    assert cache._stores.sync.uri == mongodb_uri
    close_shared()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"OPTIONS": {"colection": "x"}}, "did you mean 'collection'"),
        ({"OPTIONS": {"expires": 60}}, "set its TIMEOUT instead"),
        ({"OPTIONS": {"MAX_ENTRIES": 10}}, "does not cull"),
        ({"OPTIONS": {"serializer": "pickle"}}, "needs a secret"),
        ({"OPTIONS": {"serializer_secret": "env:NOT_SET_ANYWHERE"}}, "NOT_SET_ANYWHERE is not set"),
        ({"OPTIONS": {"uri": "mongodb://h"}}, "LOCATION or as OPTIONS uri"),
        ({"OPTIONS": {"client": object()}}, "does not take a client"),
        ({"OPTIONS": ["collection"]}, "must be a dict"),
    ],
)
def test_cache_configuration_mistakes(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MongoDBCache("mongodb://localhost:27017", params)


def test_session_configuration_mistakes_are_checked() -> None:
    cases = [
        ({"OPTIONS": {"expires": 60}}, "set its SESSION_COOKIE_AGE instead"),
        ({"LOCATON": "mongodb://h"}, "unknown key LOCATON"),
        ({"LOCATION": "http://h"}, "must begin with mongodb://"),
        ({"LOCATION": "env:MSB_NO_SUCH_VARIABLE"}, "option 'LOCATION' is malformed"),
    ]
    for setting, message in cases:
        with override_settings(MONGO_SESSIONS=setting):
            with pytest.raises(ConfigurationError, match=message):
                SessionStore()
            errors = checks.run_checks(tags=["mongo_sessions"])
            assert [e.id for e in errors] == ["mongo_sessions.E001"], errors
            assert message.split()[-1] in errors[0].msg


def test_check_passes_and_warns_of_an_unused_serializer(mongo_settings: Any) -> None:
    assert checks.run_checks(tags=["mongo_sessions"]) == []
    with override_settings(SESSION_SERIALIZER="myapp.serializers.Custom"):
        assert [m.id for m in checks.run_checks(tags=["mongo_sessions"])] == ["mongo_sessions.W001"]
    for key, expected in [("_auth_userid", ["mongo_sessions.W002"]), ("_auth_user_id", [])]:
        options = {**mongo_settings["OPTIONS"], "owner_key": key}
        with override_settings(MONGO_SESSIONS={**mongo_settings, "OPTIONS": options}):
            assert [m.id for m in checks.run_checks(tags=["mongo_sessions"])] == expected


def test_django_checks_report_a_bad_cache(mongodb_uri: str) -> None:
    setting = {"default": {"BACKEND": BACKEND, "LOCATION": mongodb_uri, "OPTIONS": {"x": 1}}}
    with override_settings(CACHES=setting):
        with pytest.raises(ConfigurationError, match="unknown setting 'x'"):
            checks.run_checks(tags=["caches"])  # Django's own check builds every cache


def test_one_manager_per_configuration(mongo_settings: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: SessionStore()._stores, range(32)))
    assert all(s is found[0] for s in found)
    # Session engine and cache with the same options share the managers' connection.
    cache = caches["default"]
    assert cache._stores.sync._conn is found[0].sync._conn
    assert cache._stores.async_._conn is found[0].async_._conn
    assert caches["prefix"]._stores.sync.prefix != cache._stores.sync.prefix


# -- clear_expired and the command ------------------------------------------------------------


def test_clear_expired_purges_only_without_ttl_index(
    mongo_settings: dict[str, Any], clock: Any, collection: Any
) -> None:
    store = SessionStore()
    store["a"] = 1
    store.save()
    clock.advance(settings.SESSION_COOKIE_AGE + 1)
    SessionStore.clear_expired()  # the TTL index does it
    assert len(session_docs(collection)) == 1
    none = {**mongo_settings, "OPTIONS": {**mongo_settings["OPTIONS"], "cleanup": "none"}}
    with override_settings(MONGO_SESSIONS=none):
        call_command("clearsessions")
        assert session_docs(collection) == []


def test_management_command(mongo_settings: Any, clock: Any) -> None:
    def run(*args: str) -> str:
        out = StringIO()
        call_command("mongo_sessions", *args, stdout=out)
        return out.getvalue()

    assert "created index" in run("ensure_indexes") or "already" in run("ensure_indexes")
    assert run("ensure_indexes").strip() == "indexes are already in place"
    caches["default"].set("k", 1, 10)
    clock.advance(11)
    stats = json.loads(run("stats", "--cache", "default"))
    assert stats["expired"] == 1 and stats["index_problems"] == []
    assert run("purge_expired", "--cache", "default").strip() == "deleted 1 expired entries"
    with pytest.raises(CommandError, match="no cache 'nope'"):
        run("stats", "--cache", "nope")
    with override_settings(MONGO_SESSIONS={"OPTIONS": {"colection": "x"}}):
        with pytest.raises(CommandError, match="did you mean"):
            run("stats")


@pytest.fixture
def owned_settings(mongo_settings: dict[str, Any]) -> Iterator[dict[str, Any]]:
    owned = {
        **mongo_settings,
        "OPTIONS": {**mongo_settings["OPTIONS"], "owner_key": "_auth_user_id"},
    }
    with override_settings(MONGO_SESSIONS=owned):
        yield owned


@pytest.mark.parametrize("view", ["/log-out-others/", "/alog-out-others/"])
def test_log_out_other_devices(owned_settings: Any, user: User, view: str) -> None:
    clients = [Client() for _ in range(3)]
    for client in clients:
        client.post("/login/", {"username": "ada"})
    current, *rest = clients
    assert current.get("/others/").content == b"2"
    assert current.post(view).content == b"2"
    assert [c.get("/whoami/").content for c in clients] == [b"ada", b"anonymous", b"anonymous"]
    assert current.get("/others/").content == b"0"
    rest[0].post("/login/", {"username": "ada"})  # logs in again: a new session
    assert log_out_everywhere(user.pk) == 2
    assert [c.get("/whoami/").content for c in clients[:2]] == [b"anonymous", b"anonymous"]
    assert asyncio.run(alog_out_everywhere(user.pk)) == 0
    assert Client().post(view).content == b"0"  # nobody logged in: nothing to end


def test_log_out_helpers_need_owner_key(mongo_settings: Any, user: User) -> None:
    with pytest.raises(ConfigurationError, match="owner_key='_auth_user_id' in MONGO_SESSIONS"):
        log_out_everywhere(user.pk)


def test_revoke_a_users_sessions(
    mongo_settings: dict[str, Any], user: User, collection: Any
) -> None:
    owned = {
        **mongo_settings,
        "OPTIONS": {**mongo_settings["OPTIONS"], "owner_key": "_auth_user_id"},
    }
    with override_settings(MONGO_SESSIONS=owned):
        clients = [Client(), Client()]
        for client in clients:
            client.post("/login/", {"username": "ada"})
            assert client.get("/whoami/").content == b"ada"
        out = StringIO()
        call_command("mongo_sessions", "sessions", "--user", str(user.pk), stdout=out)
        listed = json.loads(out.getvalue())
        assert len(listed) == 2 and {"handle", "created", "written", "expires"} <= set(listed[0])
        out = StringIO()
        call_command("mongo_sessions", "revoke", "--user", str(user.pk), stdout=out)
        assert out.getvalue().strip() == "ended 2 sessions"
        for client in clients:
            assert client.get("/whoami/").content == b"anonymous"
    with pytest.raises(CommandError, match="owner_key='_auth_user_id' in MONGO_SESSIONS"):
        call_command("mongo_sessions", "revoke", "--user", str(user.pk))
    for args, message in [
        (["revoke", "--cache", "default", "--user", "1"], "leave out --cache"),
        (["sessions"], "sessions needs --user ID"),
        (["stats", "--user", "1"], "--user is for sessions and revoke, not stats"),
    ]:
        with pytest.raises(CommandError, match=message):
            call_command("mongo_sessions", *args)


# -- the documentation -------------------------------------------------------------------------


def _docs_settings(mongodb_uri: str, database_name: str) -> dict[str, Any]:
    """The settings blocks of docs/django.rst, run as written, hosts and database rewritten."""
    from .test_docs import rst_snippets

    namespace: dict[str, Any] = {}
    target = mongodb_uri.rstrip("/") + "/" + database_name
    for snippet in rst_snippets(ROOT / "docs" / "django.rst", "docs/django.rst"):
        if snippet.language in ("python", "default") and "SESSION_ENGINE" in snippet.code:
            code = re.sub(r"mongodb://localhost:27017/\w+", target, snippet.code)
            exec(compile(code, snippet.name, "exec"), namespace)  # the page's own code
    return {k: v for k, v in namespace.items() if k.isupper()}


def test_documented_settings_serve_a_request(
    mongodb_uri: str, database_name: str, collection: Any
) -> None:
    documented = _docs_settings(mongodb_uri, database_name)
    assert documented["SESSION_ENGINE"] == ENGINE
    with override_settings(**documented):
        client = Client()
        assert client.get("/visits/").content == b"1 visits"
        assert client.get("/visits/").content == b"2 visits"
        caches["default"].set("k", 1)
        assert caches["default"].get("k") == 1
        assert checks.run_checks() == []
    close_shared()
