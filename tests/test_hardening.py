"""Defects found by trying the library as a new user would, one test each.

Options that were accepted and ignored, mistakes that got the wrong error
or none, and data lost after a blip.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

import pytest
import webtest
from beaker.middleware import CacheMiddleware, SessionMiddleware
from cachelib.serializers import JSONSerializer

from mongo_session_backends import (
    ConfigurationError,
    KeyTypeError,
    ManagerClosed,
    MongoManager,
    MongoSessionError,
    OperationError,
    SerializationError,
    generate_key,
)
from mongo_session_backends.beaker import MongoNamespaceManager
from mongo_session_backends.cachelib import MongoDBCache
from mongo_session_backends.config import manager_options
from mongo_session_backends.connection import mask_uri
from mongo_session_backends.pyramid import MongoSessionFactory, session_factory_from_settings

from .apps import pyramid_app

SECRET = "a-secret-of-enough-length"


class Unpicklable:
    """Needs pickle: the native serializer refuses it."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Unpicklable) and other.n == self.n


# -- options that were silently ignored ------------------------------------------------


def test_cache_uses_the_configured_serializer(
    manager_options: dict[str, Any], collection: Any
) -> None:
    cache = MongoDBCache(serializer="pickle", serializer_secret=SECRET, **manager_options)
    assert cache.set("k", Unpicklable(3)) and cache.get("k") == Unpicklable(3)
    assert isinstance(collection.find_one()["value"], bytes)
    cache = MongoDBCache(serializer="json", key_prefix="j:", **manager_options)
    cache.set("k", {"a": 1})
    assert collection.find_one({"_id": "j:k"})["value"] == '{"a":1}'
    cache.serializer = JSONSerializer()  # type: ignore[assignment]  # replaced explicitly: wins
    cache.set("k", {"a": 2})
    assert collection.find_one({"_id": "j:k"})["value"] == b'{"a": 2}'


def test_adapter_prefix_nests_under_the_manager_prefix(
    manager_options: dict[str, Any], collection: Any
) -> None:
    app1 = MongoManager(prefix="app1:", **manager_options)
    app2 = MongoManager(prefix="app2:", **manager_options)
    c1, c2 = (
        MongoDBCache(manager=app1, key_prefix="c:"),
        MongoDBCache(manager=app2, key_prefix="c:"),
    )
    c1.set("k", 1)
    c2.set("k", 2)
    assert c1.get("k") == 1 and c2.get("k") == 2
    assert c1.clear()
    assert c2.get("k") == 2
    b1 = MongoNamespaceManager("ns", manager=app1)
    b1["k"] = 1
    assert collection.count_documents({"_id": {"$regex": "^app1:beaker:"}}) == 1
    factory = MongoSessionFactory(SECRET, manager=app2)
    assert factory.store.prefix == "app2:session:"


def test_manager_and_options_are_refused_by_every_adapter(manager: MongoManager) -> None:
    for build in (
        lambda: MongoDBCache(manager=manager, collection="other"),
        lambda: MongoNamespaceManager("ns", manager=manager, collection="other"),
        lambda: MongoSessionFactory(SECRET, manager=manager, collection="other"),
    ):
        with pytest.raises(ConfigurationError, match="collection"):
            build()


def test_ini_connection_options_keep_their_type() -> None:
    manager, _ = manager_options(
        {"connection_options.username": "7", "connection_options.password": "123456"}
    )
    m = MongoManager(**manager)
    credentials = m.client.options.pool_options._credentials
    assert credentials.username == "7" and credentials.password == "123456"
    with pytest.raises(ConfigurationError, match="tz_aware"):
        MongoManager(**manager_options({"connection_options.tz_aware": "maybe"})[0])


def test_values_are_honoured_or_refused_never_swapped() -> None:
    factory = session_factory_from_settings(
        {"mongo_sessions.secret": SECRET, "mongo_sessions.cookie_max_age": "none"}
    )
    assert factory.max_age is None
    for name in ("lock_timeout", "lock_poll"):
        with pytest.raises(ConfigurationError, match=name):
            MongoNamespaceManager("ns", **{name: "0"})
    ns = MongoNamespaceManager("ns", lock_timeout="0.5", lock_poll="0.01")
    assert (ns.lock_timeout, ns.lock_poll) == (0.5, 0.01)


def test_beaker_expiretime_zero_never_expires(manager: MongoManager, collection: Any) -> None:
    ns = MongoNamespaceManager("ns", manager=manager, timeout="60")
    ns.set_value("forever", 1, expiretime=0)
    ns.set_value("default", 1)
    docs = {d["_id"].rsplit(":", 1)[1]: d["expires"] for d in collection.find()}
    assert docs["forever"].year == 9999
    assert docs["default"].year < 9999


@pytest.mark.parametrize(
    "options",
    [
        {"expires_key": "value"},
        {"expires_key": "ns"},
        {"expires_key": "_id"},
        {"id_field": "expires"},
        {"id_field": "owner"},
        {"id_field": "k", "expires_key": "k"},
        {"expires_key": "$x"},
        {"id_field": "a.b"},
        {"expires_key": "_ts", "cleanup": "cosmos"},
    ],
)
def test_field_names_are_checked_against_each_other(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        MongoManager(**options)


def test_beaker_middleware_forwards_prefixed_options(mongodb_uri: str, database_name: str) -> None:
    url = mongodb_uri.rstrip("/").split("?")[0] + "/" + database_name

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["beaker.session"]
        session["n"] = session.get("n", 0) + 1
        session.save()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(session["n"]).encode()]

    options = {"session.type": "mongodb", "session.url": url, "session.data_dir": "unused"}
    client = webtest.TestApp(SessionMiddleware(app, **options))
    assert client.get("/").text == "1" and client.get("/").text == "2"
    cached = CacheMiddleware(app, **{"cache.type": "mongodb", "cache.url": url})
    assert cached is not None
    typo = webtest.TestApp(SessionMiddleware(app, **{**options, "session.colection": "x"}))
    with pytest.raises(ConfigurationError, match="colection"):
        typo.get("/")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": "1200"}, None),
        ({"timeout": "Invalid value"}, "timeout"),
        ({"reissue_time": "0"}, None),
        ({"max_age": "invalid value"}, "max_age"),
        ({"max_age": "3600"}, None),
        ({"secure": "maybe"}, "secure"),
        ({"samesite": "sometimes"}, "samesite"),
        ({"timeout": float("nan")}, "timeout"),
    ],
)
def test_pyramid_factory_coerces_or_refuses(options: dict[str, Any], message: str | None) -> None:
    if message is None:
        factory = MongoSessionFactory(SECRET, **options)
        assert all(not isinstance(getattr(factory, k, 0), str) for k in options)
        return
    with pytest.raises(ConfigurationError, match=message):
        MongoSessionFactory(SECRET, **options)


# -- mistakes that got the wrong error ----------------------------------------------------


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"uri": "mongdb://localhost"}, "mongodb://"),
        ({"uri": "http://localhost"}, "mongodb://"),
        ({"uri": "not-a-uri"}, "mongodb://"),
        ({"uri": "mongodb://"}, "hostname"),
        ({"uri": "mongodb://localhost/?serverSelectionTimeout=5"}, "Unknown option"),
        ({"connection_options": {"serverSelectionTimeout": 5}}, "serverSelectionTimeout"),
        ({"database_name": "my app"}, "database"),
        ({"collection": "$x"}, "collection"),
        ({"client": 42}, "client"),
    ],
)
def test_local_configuration_mistakes_fail_at_construction(
    options: dict[str, Any], reason: str
) -> None:
    for build in (
        lambda: MongoManager(**options),
        lambda: MongoDBCache(**options),
        lambda: MongoSessionFactory(SECRET, **options),
    ):
        with pytest.raises(ConfigurationError, match=reason):
            build()


def test_uri_mistake_messages_mask_secrets() -> None:
    with pytest.raises(ConfigurationError) as info:
        MongoManager("mongodb://user:hunter2@localhost/?tlsCertificateKeyFilePassword=pw9&x=1")
    assert "hunter2" not in str(info.value) and "pw9" not in str(info.value)


def test_masking_covers_secret_options() -> None:
    uri = (
        "mongodb://u:pw1@h/db?tlsCertificateKeyFilePassword=pw2&authMechanism=MONGODB-AWS"
        "&authMechanismProperties=AWS_SESSION_TOKEN:tok3&appname=x"
    )
    masked = mask_uri(uri)
    for secret in ("pw1", "pw2", "tok3"):
        assert secret not in masked
    assert "appname=x" in masked and "u:***@h" in masked
    m = MongoManager(uri)
    assert "pw" not in repr(m) and "tok3" not in repr(m)
    assert "tok3" not in repr(MongoSessionFactory(SECRET, uri=uri))


def test_client_may_be_a_uri(mongodb_uri: str, database_name: str) -> None:
    cache = MongoDBCache(client=mongodb_uri, database_name=database_name)
    assert cache.set("k", 1) and cache.get("k") == 1


def test_closed_manager_is_never_hidden_as_an_outage(manager: MongoManager) -> None:
    cache = MongoDBCache(manager=manager)
    ns = MongoNamespaceManager("ns", manager=manager, empty_on_outage=True)
    manager.close()
    with pytest.raises(ManagerClosed):
        cache.get("k")
    with pytest.raises(ManagerClosed):
        cache.set("k", 1)
    with pytest.raises(ManagerClosed):
        ns["k"]


def test_unique_id_exhaustion_is_not_an_outage(manager: MongoManager) -> None:
    factory = MongoSessionFactory(SECRET, manager=manager, empty_on_outage=True)
    factory.store.add = lambda *a, **k: False  # type: ignore[method-assign]

    def view(request: Any) -> Any:
        request.session["a"] = 1
        return request.response

    app = pyramid_app(view, factory=factory)
    with pytest.raises(OperationError, match="unique session id"):
        app.get("/")


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 1e12, -1e12, "60", True])
def test_bad_timeouts_are_refused(manager: MongoManager, timeout: Any) -> None:
    with pytest.raises(ConfigurationError):
        manager.set("k", 1, timeout)
    with pytest.raises(ConfigurationError):
        MongoManager(expires=timeout)
    assert manager.get("k") is None


def test_lone_surrogate_key_and_value(manager: MongoManager) -> None:
    with pytest.raises(KeyTypeError, match="surrogate"):
        manager.set("a\udc80", 1)
    manager.set("k", "old")
    with pytest.raises(SerializationError, match="surrogate"):
        manager.set("k", "b\udc80")
    assert manager.get("k") == "old"


def test_native_serializer_error_names_the_way_out(manager: MongoManager) -> None:
    with pytest.raises(SerializationError) as info:
        manager.set("k", Unpicklable(1))
    message = str(info.value)
    assert "'Unpicklable'" in message and "serializer='pickle'" in message
    assert "serializer_secret" in message and "datetime" in message


# -- data and availability after a blip ---------------------------------------------------


def test_unreadable_entry_is_absent_everywhere(
    manager_options: dict[str, Any], collection: Any
) -> None:
    old, new = generate_key(), generate_key()
    before = MongoManager(encryption_keys=[old], **manager_options)
    before.set("k", "v")
    before.set("n", 5)
    after = MongoManager(encryption_keys=[new], **manager_options)  # step 2 of a rotation
    assert after.get("k") is None
    assert not after.has("k")
    assert after.add("k", "fresh") and after.get("k") == "fresh"
    assert after.incr("n") == 1
    cache = MongoDBCache(manager=after)
    collection.update_one({"_id": "k"}, {"$set": {"value": b"garbage"}})
    assert not cache.has("k") and cache.add("k", 2) and cache.get("k") == 2


def test_unreadable_native_entry_restarts_incr(manager: MongoManager, collection: Any) -> None:
    manager.set("n", 1)
    collection.update_one({"_id": "n"}, {"$set": {"value": {"~t": "bogus", "v": 1}}})
    assert manager.incr("n") == 1


@pytest.mark.parametrize("mode", ["find_and_modify", "update_and_read"])
def test_incr_is_exact_past_64_bits(manager: MongoManager, mode: str) -> None:
    manager.incr_mode = mode  # type: ignore[assignment]
    manager.set("n", 2**63 - 2)
    assert manager.incr("n") == 2**63 - 1
    assert manager.incr("n") == 2**63
    assert manager.get("n") == 2**63
    assert manager.incr("n", -2) == 2**63 - 2
    assert manager.incr("big", 2**70) == 2**70
    assert manager.incr("n", 2**64) == 2**64 + 2**63 - 2


def test_incr_on_a_float_is_refused_and_unchanged(manager: MongoManager) -> None:
    manager.set("f", 1.5)
    with pytest.raises(SerializationError, match="integer"):
        manager.incr("f")
    assert manager.get("f") == 1.5
    manager.set("s", "text")
    with pytest.raises(SerializationError):
        manager.incr("s")
    assert manager.get("s") == "text"


def test_incr_with_a_dollar_prefix_stays_in_its_prefix(
    manager: MongoManager, collection: Any
) -> None:
    view = manager.with_prefix("$weird.")
    assert view.incr("n") == 1 and view.incr("n") == 2
    assert collection.find_one()["ns"] == "$weird."
    assert view.keys() == ["n"] and view.clear() == 1


def test_errors_for_bad_input_all_derive_from_the_root() -> None:
    for exc in (ConfigurationError, KeyTypeError, SerializationError, ManagerClosed):
        assert issubclass(exc, MongoSessionError)


def test_no_secret_in_logs(
    manager_options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    m = MongoManager(encryption_keys=[generate_key()], **manager_options)
    m.set("k", "marker-value")
    MongoManager(encryption_keys=[generate_key()], **manager_options).get("k")
    assert "marker-value" not in caplog.text


def test_infinite_expires_setting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="expires"):
        MongoManager(**manager_options({"expires": "inf"})[0])
    assert math.isfinite(MongoManager(**manager_options({"expires": "60"})[0]).expires)


def test_timedelta_timeouts(manager: MongoManager, clock: Any) -> None:
    manager.set("k", 1, dt.timedelta(seconds=10))
    clock.advance(11)
    assert manager.get("k") is None


def test_newcomer_findings(manager_options: dict[str, Any], mongodb_uri: str) -> None:
    """Strings for booleans, URI timeouts, URI option values, names and timeouts."""
    with pytest.raises(ConfigurationError):
        MongoManager(hash_ids="maybe", id_secret=SECRET)
    assert not MongoManager(hash_ids="false", id_secret=SECRET).hash_ids
    uri = "mongodb://127.0.0.1:1/app?serverSelectionTimeoutMS=500&socketTimeoutMS=1234"
    options = MongoManager(uri).client.options
    assert options.server_selection_timeout == 0.5 and options.pool_options.socket_timeout == 1.234
    for bad in ("?maxPoolSize=abc", "?serverSelectionTimeoutMS=-5", "?tls=true&tlsCAFile=/no"):
        with pytest.raises(ConfigurationError):
            MongoManager("mongodb://localhost/" + bad)
    for names in ({"collection": "system.x"}, {"database_name": "d" * 80}, {"database_name": ""}):
        with pytest.raises(ConfigurationError):
            MongoManager(**names)
    cache = MongoDBCache(**manager_options)
    for timeout in ("10", float("nan"), float("inf")):
        with pytest.raises(ConfigurationError):
            cache.set("k", 1, timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        MongoDBCache(default_timeout=10**12)
    with pytest.raises(ConfigurationError, match="max_age"):
        MongoSessionFactory(SECRET, max_age=-1)


def test_a_manager_without_keys_never_returns_ciphertext(manager_options: dict[str, Any]) -> None:
    MongoManager(encryption_keys=[generate_key()], **manager_options).set("k", b"secret bytes")
    plain = MongoManager(**manager_options)
    assert plain.get("k") is None and not plain.has("k")


@pytest.mark.parametrize("mode", ["find_and_modify", "update_and_read"])
def test_incr_live_never_creates(manager: MongoManager, clock: Any, mode: str) -> None:
    manager.incr_mode = mode  # type: ignore[assignment]
    assert manager.incr_live("missing") is None and manager.get("missing") is None
    manager.set("n", 1, 10)
    assert manager.incr_live("n", 2) == 3
    clock.advance(11)
    assert manager.incr_live("n") is None
    manager.set("big", 2**63 - 1)
    assert manager.incr_live("big") == 2**63
