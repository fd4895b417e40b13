"""Every documented option takes effect through every adapter that accepts it.

Each option is given as a Python keyword and as the string an ``.ini`` file
holds (Beaker ``session.*`` and ``cache.*``, Pyramid ``mongo_sessions.*``),
and its effect is checked on the stored documents, the indexes or the
behaviour. ``test_every_documented_option_is_covered`` fails when
docs/configuration.rst lists an option that the table here does not cover.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import webtest
from beaker.cache import CacheManager
from beaker.middleware import SessionMiddleware
from beaker.util import parse_cache_config_options
from pymongo import MongoClient
from pyramid.interfaces import ISessionFactory

from mongo_session_backends import ConfigurationError, DeleteManyError, MongoManager, generate_key
from mongo_session_backends.beaker import MongoNamespaceManager
from mongo_session_backends.cachelib import MongoDBCache
from mongo_session_backends.embedded import free_port
from mongo_session_backends.pyramid import MongoSessionFactory

from .apps import pyramid_app

SECRET = "a-secret-of-enough-length"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.rst"

#: The ways an option reaches the manager: a Python keyword of each adapter,
#: or an .ini string through each framework's own configuration.
KEYWORD_FORMS = ["manager", "cachelib", "beaker", "pyramid"]
INI_FORMS = ["beaker-session.ini", "beaker-cache.ini", "pyramid.ini"]
ALL_FORMS = KEYWORD_FORMS + INI_FORMS


def ini(value: Any) -> str:
    """The string an .ini file holds for ``value``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def base_uri(uri: str) -> str:
    """``uri`` without a database path or query."""
    head, _, _ = uri.partition("?")
    scheme, _, rest = head.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


@dataclass
class Target:
    """An adapter built in one form, and how to write through it."""

    form: str
    store: MongoManager  # the adapter's view of the manager
    write: Callable[[str, Any], None]
    adapter: Any = None
    app: Any = None
    responses: list[Any] = field(default_factory=list)


class Env:
    """Builds targets on this test's database and finds what they stored."""

    def __init__(self, uri: str, database: str, client: MongoClient[Any]) -> None:
        self.uri = uri
        self.database = database
        self.client = client
        self.dropped: list[str] = []

    def options(self, **extra: Any) -> dict[str, Any]:
        """The connection options every target gets, unless the option tested replaces them."""
        base = {"uri": base_uri(self.uri) + "/" + self.database}
        base.update(extra)
        return base

    def docs(self, collection: str = "sessions", database: str | None = None) -> list[Any]:
        db = self.client[database or self.database]
        return [d for d in db[collection].find() if not str(d.get("_id", "")).startswith("lock:")]

    def indexes(self, collection: str = "sessions") -> dict[str, Any]:
        return dict(self.client[self.database][collection].index_information())

    def build(self, form: str, options: dict[str, Any]) -> Target:
        """``form`` configured with ``options`` (keyword values; .ini forms stringify them)."""
        options = {**self.options(), **options}
        if options.get("uri") is None:
            options.pop("uri")
        if form == "manager":
            m = MongoManager(**options)
            return Target(form, m, lambda k, v: m.set(k, v) and None, m)
        if form == "cachelib":
            cache = MongoDBCache(**options)
            return Target(form, cache.store, lambda k, v: cache.set(k, v) and None, cache)
        if form == "beaker":
            if "uri" in options:
                options["url"] = options.pop("uri")
            ns = MongoNamespaceManager("ns", **options)
            return Target(form, ns.store, ns.__setitem__, ns)
        if form == "pyramid":
            return self._pyramid(MongoSessionFactory(SECRET, **options), form)
        settings = self._ini(options)
        if form == "pyramid.ini":
            prefixed = {"mongo_sessions.secret": SECRET}
            prefixed.update({f"mongo_sessions.{k}": v for k, v in settings.items()})
            app = pyramid_app(
                _store_view, settings=prefixed, include="mongo_session_backends.pyramid"
            )
            factory = app.app.registry.queryUtility(ISessionFactory)
            return self._pyramid(factory, form, app)
        if "uri" in settings:
            settings["url"] = settings.pop("uri")
        if form == "beaker-cache.ini":
            config = {"cache.type": "mongodb", **{f"cache.{k}": v for k, v in settings.items()}}
            beaker_cache = CacheManager(**parse_cache_config_options(config)).get_cache("c")
            return Target(form, beaker_cache.namespace.store, beaker_cache.put, beaker_cache)
        assert form == "beaker-session.ini"
        config = {"session.type": "mongodb", **{f"session.{k}": v for k, v in settings.items()}}
        seen: dict[str, Any] = {}

        def view(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            session = environ["beaker.session"]
            session[environ["QUERY_STRING"]] = "v"
            session.save()
            seen["session"] = session
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        wsgi = webtest.TestApp(SessionMiddleware(view, config))
        target = Target(form, None, lambda k, v: None, app=wsgi)  # type: ignore[arg-type]

        def write(key: str, value: Any) -> None:
            target.responses.append(wsgi.get("/?" + key))
            target.store = seen["session"].namespace.store

        target.write = write
        write("first", None)
        return target

    def _ini(self, options: dict[str, Any]) -> dict[str, str]:
        settings: dict[str, str] = {}
        for name, value in options.items():
            if name == "connection_options":
                settings.update({f"connection_options.{k}": ini(v) for k, v in value.items()})
            else:
                settings[name] = ini(value)
        return settings

    def _pyramid(self, factory: Any, form: str, app: Any = None) -> Target:
        app = app or pyramid_app(_store_view, factory=factory)
        target = Target(form, factory.store, lambda k, v: None, factory, app)

        def write(key: str, value: Any) -> None:
            target.responses.append(app.get("/", params={"k": key}))

        target.write = write
        return target


def _store_view(request: Any) -> Any:
    request.session[request.params["k"]] = "v"
    request.response.text = "ok"
    return request.response


@pytest.fixture
def env(mongodb_uri: str, database_name: str, admin_client: MongoClient[Any]) -> Iterator[Env]:
    e = Env(mongodb_uri, database_name, admin_client)
    yield e
    for name in e.dropped:
        admin_client.drop_database(name)


def expiry_in(doc: Any, key: str = "expires") -> float:
    """Seconds from now to the document's expiry."""
    expires = doc[key]
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.timezone.utc)
    return float((expires - dt.datetime.now(dt.timezone.utc)).total_seconds())


def only_doc(env: Env, **kwargs: Any) -> Any:
    docs = env.docs(**kwargs)
    assert docs, "nothing was stored"
    return docs[-1]


# -- the checks: build the target, write, look ---------------------------------------


def check_uri(env: Env, form: str) -> None:
    t = env.build(form, {"uri": base_uri(env.uri) + "/" + env.database})
    t.write("k", {"v": 1})
    assert env.docs()


def check_uri_from_environment(env: Env, form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SESSION_URI", base_uri(env.uri) + "/" + env.database)
    t = env.build(form, {"uri": "env:TEST_SESSION_URI"})
    t.write("k", {"v": 1})
    assert env.docs()


def check_database_name(env: Env, form: str) -> None:
    other = "t_" + uuid.uuid4().hex[:12]
    env.dropped.append(other)
    t = env.build(form, {"uri": base_uri(env.uri), "database_name": other})
    t.write("k", {"v": 1})
    assert env.docs(database=other) and not env.docs()


def check_collection(env: Env, form: str) -> None:
    t = env.build(form, {"collection": "other"})
    t.write("k", {"v": 1})
    assert env.docs("other") and not env.docs()


def check_connection_options(env: Env, form: str) -> None:
    t = env.build(form, {"connection_options": {"maxPoolSize": 7, "appname": "7"}})
    t.write("k", {"v": 1})
    pool = t.store.client.options.pool_options
    assert pool.max_pool_size == 7
    assert pool.metadata["application"]["name"] == "7"  # a string stays a string


def check_expires(env: Env, form: str) -> None:
    t = env.build(form, {"expires": 60})
    t.write("k", {"v": 1})
    assert 50 < expiry_in(only_doc(env)) <= 61


def check_expires_refused(env: Env, form: str) -> None:
    with pytest.raises(ConfigurationError, match="expires"):
        env.build(form, {"expires": 60})


def check_expires_key(env: Env, form: str) -> None:
    t = env.build(form, {"expires_key": "exp"})
    t.write("k", {"v": 1})
    doc = only_doc(env)
    assert "exp" in doc and "expires" not in doc
    assert env.indexes()["exp_1"]["expireAfterSeconds"] == 0


def check_id_field(env: Env, form: str) -> None:
    t = env.build(form, {"id_field": "key"})
    t.write("k", {"v": 1})
    doc = only_doc(env)
    assert isinstance(doc["key"], str) and doc["key"] != doc["_id"]
    assert env.indexes()["key_1"]["unique"] is True


def check_expire_after_seconds(env: Env, form: str) -> None:
    t = env.build(form, {"expire_after_seconds": 30})
    t.write("k", {"v": 1})
    assert env.indexes()["expires_1"]["expireAfterSeconds"] == 30


def check_cleanup(env: Env, form: str) -> None:
    t = env.build(form, {"cleanup": "none"})
    t.write("k", {"v": 1})
    assert "expires_1" not in env.indexes()
    t = env.build(form, {"cleanup": "cosmos", "expires": 3600, "collection": "cosmos"})
    t.write("k", {"v": 1})
    assert env.indexes("cosmos")["_ts_1"]["expireAfterSeconds"] == 3600


def check_serializer(env: Env, form: str) -> None:
    t = env.build(form, {"serializer": "json"})
    t.write("k", {"v": 1})
    value = only_doc(env)["value"]
    assert isinstance(value, str)
    json.loads(value)


def check_serializer_secret(env: Env, form: str) -> None:
    t = env.build(form, {"serializer": "pickle", "serializer_secret": SECRET})
    t.write("k", {"v": 1})
    value = only_doc(env)["value"]
    assert isinstance(value, bytes) and b"\x80" in value  # a signed pickle
    if t.adapter is not None and form in ("manager", "cachelib"):
        assert t.adapter.get("k") == {"v": 1}


def check_encryption_keys(env: Env, form: str) -> None:
    keys = [generate_key(), generate_key()]
    t = env.build(form, {"encryption_keys": keys})
    t.write("k", {"v": "plain-marker"})
    value = only_doc(env)["value"]
    assert isinstance(value, bytes) and b"plain-marker" not in value


def check_hash_ids(env: Env, form: str) -> None:
    t = env.build(form, {"hash_ids": True, "id_secret": SECRET})
    t.write("k", {"v": 1})
    for doc in env.docs():
        assert re.fullmatch(r"[0-9a-f]{64}", doc["_id"]), doc["_id"]


def check_prefix(env: Env, form: str) -> None:
    t = env.build(form, {"prefix": "app1:"})
    t.write("k", {"v": 1})
    for doc in env.docs():
        assert doc["_id"].startswith("app1:") and doc["ns"].startswith("app1:")
    assert t.store.prefix.startswith("app1:")


def check_incr_mode(env: Env, form: str) -> None:
    t = env.build(form, {"incr_mode": "update_and_read"})
    assert t.store.incr_mode == "update_and_read"
    assert t.store.incr("n") == 1 and t.store.incr("n") == 2


def check_read_preference(env: Env, form: str) -> None:
    t = env.build(form, {"read_preference": "secondaryPreferred"})
    t.write("k", {"v": 1})
    assert t.store.read_preference.mongos_mode == "secondaryPreferred"
    uri = base_uri(env.uri) + "/" + env.database + "?readPreference=nearest"
    default = env.build(form, {"uri": uri})
    assert default.store.read_preference.mongos_mode == "primary"  # the URI's is not used


def check_owner_key(env: Env, form: str) -> None:
    t = env.build(form, {"owner_key": "uid"})
    assert t.store.owner_key == "uid"
    if form.startswith("pyramid"):
        t.write("uid", None)  # the view stores "v" under the session key "uid"
        assert any(d.get("user") == "v" for d in env.docs())
    elif form.startswith("beaker"):  # Beaker's values are opaque: see docs/owners.rst
        t.write("k", {"uid": "ada"})
    else:
        t.write("k", {"uid": "ada"})
        assert only_doc(env)["user"] == "ada"
    assert "user_1" in env.indexes()


def check_client(env: Env, form: str) -> None:
    client: MongoClient[Any] = MongoClient(env.uri, tz_aware=True)
    try:
        t = env.build(form, {"uri": None, "client": client, "database_name": env.database})
        t.write("k", {"v": 1})
        assert t.store.client is client and env.docs()
    finally:
        client.close()


def check_client_as_uri(env: Env, form: str) -> None:
    t = env.build(form, {"uri": None, "client": base_uri(env.uri) + "/" + env.database})
    t.write("k", {"v": 1})
    assert env.docs()


def check_on_error(env: Env, form: str) -> None:
    env.client[env.database]["sessions"].create_index("expires", name="not_ttl")
    errors: list[BaseException] = []
    t = env.build(form, {"on_error": errors.append})
    t.write("k", {"v": 1})
    assert errors and env.docs()


def check_clock(env: Env, form: str) -> None:
    fixed = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    t = env.build(form, {"clock": lambda: fixed})
    t.write("k", {"v": 1})
    expires = only_doc(env)["expires"].replace(tzinfo=dt.timezone.utc)
    assert expires.year == 2030


# -- adapter options -----------------------------------------------------------------


def check_default_timeout(env: Env, form: str) -> None:
    t = env.build(form, {"default_timeout": 60})
    t.write("k", {"v": 1})
    assert 50 < expiry_in(only_doc(env)) <= 61


def check_key_prefix(env: Env, form: str) -> None:
    t = env.build(form, {"key_prefix": "mine:"})
    t.write("k", {"v": 1})
    assert all(d["_id"].startswith("mine:") for d in env.docs())


def check_beaker_timeout(env: Env, form: str) -> None:
    t = env.build(form, {"timeout": 60})
    t.write("k", {"v": 1})
    assert 50 < expiry_in(only_doc(env)) <= 61


def check_lock_timeout(env: Env, form: str) -> None:
    t = env.build(form, {"lock_timeout": 45, "lock_poll": 0.2})
    ns = t.adapter if form == "beaker" else t.adapter.namespace
    lock = ns.get_creation_lock("k")
    assert lock.poll == 0.2
    assert lock.acquire(wait=False)
    doc = env.client[env.database]["sessions"].find_one({"_id": {"$regex": "^lock:"}})
    assert 35 < expiry_in(doc) <= 46
    lock.release()


def check_empty_on_outage(env: Env, form: str) -> None:
    dead = f"mongodb://127.0.0.1:{free_port()}/x"
    options = {
        "uri": dead,
        "empty_on_outage": True,
        "connection_options": {"serverSelectionTimeoutMS": 200},
    }
    t = env.build(form, options)
    t.write("k", {"v": 1})  # dropped with a warning, not raised


def check_pyramid_timeout(env: Env, form: str) -> None:
    t = env.build(form, {"timeout": 60})
    t.write("k", "v")
    assert 50 < expiry_in(only_doc(env)) <= 61


def check_reissue_time(env: Env, form: str) -> None:
    t = env.build(form, {"reissue_time": "none" if form.endswith(".ini") else None})
    assert t.adapter.reissue_time is None


def check_cookie(env: Env, form: str) -> None:
    options = {
        "cookie_name": "sid",
        "max_age": 3600,
        "path": "/app",
        "domain": "example.com",
        "secure": True,
        "httponly": True,
        "samesite": "Strict",
    }
    if form.endswith(".ini"):
        options = {("cookie_" + k if k != "cookie_name" else k): v for k, v in options.items()}
    t = env.build(form, options)
    t.write("k", "v")
    header = t.responses[-1].headers["Set-Cookie"]
    for part in ("sid=", "Max-Age=3600", "Path=/app", "Domain=example.com", "secure",
                 "HttpOnly", "SameSite=Strict"):  # fmt: skip
        assert part.lower() in header.lower(), (part, header)


def check_cookie_max_age_none(env: Env, form: str) -> None:
    name = "cookie_max_age" if form.endswith(".ini") else "max_age"
    t = env.build(form, {name: "none" if form.endswith(".ini") else None})
    t.write("k", "v")
    assert "max-age" not in t.responses[-1].headers["Set-Cookie"].lower()


def check_set_on_exception(env: Env, form: str) -> None:
    t = env.build(form, {"set_on_exception": False})
    assert t.adapter.set_on_exception is False


def check_secret(env: Env, form: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SESSION_SECRET", SECRET)
    t = env.build(form, {})
    assert t.adapter is not None
    settings = {"mongo_sessions.uri": env.options()["uri"]}
    with pytest.raises(ConfigurationError, match="secret"):
        pyramid_app(_store_view, settings=settings, include="mongo_session_backends.pyramid")
    settings["mongo_sessions.secret"] = "env:TEST_SESSION_SECRET"
    app = pyramid_app(_store_view, settings=settings, include="mongo_session_backends.pyramid")
    assert app.get("/", params={"k": "k"}).headers["Set-Cookie"].startswith("session=")
    with pytest.raises(ConfigurationError, match="16"):
        MongoSessionFactory("short", **env.options())


def check_ignore_delete_many_errors(env: Env, form: str) -> None:
    dead = {"uri": f"mongodb://127.0.0.1:{free_port()}/x",
            "connection_options": {"serverSelectionTimeoutMS": 200}}  # fmt: skip
    assert env.build(form, dead).adapter.delete_many("a") == []
    strict = env.build(form, {**dead, "ignore_delete_many_errors": False}).adapter
    with pytest.raises(DeleteManyError):
        strict.delete_many("a")


# (option as documented, forms, check)
TABLE: list[tuple[str, list[str], Callable[..., None]]] = [
    ("uri", ALL_FORMS, check_uri),
    ("uri:env", INI_FORMS, check_uri_from_environment),
    ("client", KEYWORD_FORMS, check_client),
    ("client:uri", ["manager", "cachelib"], check_client_as_uri),
    ("database_name", ALL_FORMS, check_database_name),
    ("collection", ALL_FORMS, check_collection),
    ("connection_options", ALL_FORMS, check_connection_options),
    ("expires", ["manager", "beaker", "beaker-session.ini", "beaker-cache.ini"], check_expires),
    ("expires:refused", ["cachelib", "pyramid", "pyramid.ini"], check_expires_refused),
    ("expires_key", ALL_FORMS, check_expires_key),
    ("id_field", ALL_FORMS, check_id_field),
    ("expire_after_seconds", ALL_FORMS, check_expire_after_seconds),
    ("cleanup", ALL_FORMS, check_cleanup),
    ("on_error", KEYWORD_FORMS, check_on_error),
    ("serializer", ALL_FORMS, check_serializer),
    ("serializer_secret", ALL_FORMS, check_serializer_secret),
    ("encryption_keys", ALL_FORMS, check_encryption_keys),
    ("hash_ids", ALL_FORMS, check_hash_ids),
    ("id_secret", ALL_FORMS, check_hash_ids),
    ("prefix", ALL_FORMS, check_prefix),
    ("incr_mode", ALL_FORMS, check_incr_mode),
    ("read_preference", ALL_FORMS, check_read_preference),
    ("owner_key", ALL_FORMS, check_owner_key),
    ("clock", ["manager", "cachelib", "beaker", "pyramid"], check_clock),
    # cachelib
    ("default_timeout", ["cachelib"], check_default_timeout),
    ("key_prefix", ["cachelib", "pyramid", "pyramid.ini"], check_key_prefix),
    ("ignore_delete_many_errors", ["cachelib"], check_ignore_delete_many_errors),
    # Beaker
    ("timeout", ["beaker", "beaker-cache.ini"], check_beaker_timeout),
    ("lock_timeout", ["beaker", "beaker-cache.ini"], check_lock_timeout),
    ("lock_poll", ["beaker", "beaker-cache.ini"], check_lock_timeout),
    (
        "empty_on_outage",
        ["beaker", "beaker-cache.ini", "pyramid", "pyramid.ini"],
        check_empty_on_outage,
    ),
    # Pyramid
    ("mongo_sessions.secret", ["pyramid"], check_secret),
    ("mongo_sessions.timeout", ["pyramid", "pyramid.ini"], check_pyramid_timeout),
    ("mongo_sessions.reissue_time", ["pyramid", "pyramid.ini"], check_reissue_time),
    ("mongo_sessions.cookie_name", ["pyramid", "pyramid.ini"], check_cookie),
    ("mongo_sessions.cookie_max_age", ["pyramid", "pyramid.ini"], check_cookie),
    ("mongo_sessions.cookie_max_age:none", ["pyramid", "pyramid.ini"], check_cookie_max_age_none),
    ("mongo_sessions.cookie_path", ["pyramid", "pyramid.ini"], check_cookie),
    ("mongo_sessions.cookie_domain", ["pyramid", "pyramid.ini"], check_cookie),
    ("mongo_sessions.cookie_secure", ["pyramid", "pyramid.ini"], check_cookie),
    ("mongo_sessions.cookie_httponly", ["pyramid", "pyramid.ini"], check_cookie),
    ("mongo_sessions.cookie_samesite", ["pyramid", "pyramid.ini"], check_cookie),
    ("mongo_sessions.set_on_exception", ["pyramid", "pyramid.ini"], check_set_on_exception),
]
CASES = [(name, form, check) for name, forms, check in TABLE for form in forms]


@pytest.mark.parametrize(("name", "form", "check"), CASES,
                         ids=[f"{name}-{form}" for name, form, _ in CASES])  # fmt: skip
def test_option(
    env: Env, name: str, form: str, check: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    if check in (check_uri_from_environment, check_secret):
        check(env, form, monkeypatch)
    else:
        check(env, form)


def documented_options() -> set[str]:
    """The option and setting names in the tables of docs/configuration.rst."""
    names = set()
    for match in re.finditer(r"^   \* - ``([a-z_.]+)``", DOCS.read_text(), re.MULTILINE):
        names.add(match.group(1))
    return names


def test_every_documented_option_is_covered() -> None:
    documented = documented_options()
    assert len(documented) > 20, "the option tables of configuration.rst were not found"
    covered = {name.split(":")[0] for name, _, _ in TABLE}
    covered |= {f"mongo_sessions.{n}" for n in ("key_prefix", "empty_on_outage")}
    missing = documented - covered
    assert not missing, f"documented options without a test: {sorted(missing)}"
