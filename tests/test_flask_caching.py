"""Flask-Caching on our backend, driven through Flask-Caching itself."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import flask
import pytest
from cachelib.serializers import BaseSerializer
from flask_caching import Cache

from mongo_session_backends import ConfigurationError
from mongo_session_backends.cachelib import MongoDBCache as CachelibMongoDBCache
from mongo_session_backends.embedded import free_port
from mongo_session_backends.flask_caching import MongoDBCache

BACKEND = "mongo_session_backends.flask_caching.MongoDBCache"
SECRET = "a-signing-secret-of-some-length"


@pytest.fixture
def config(manager_options: dict[str, Any]) -> dict[str, Any]:
    options = {k: v for k, v in manager_options.items() if k != "uri"}
    return {
        "CACHE_TYPE": BACKEND,
        "CACHE_MONGODB_URI": manager_options["uri"],
        "CACHE_KEY_PREFIX": "app1:",
        "CACHE_DEFAULT_TIMEOUT": 30,
        "CACHE_OPTIONS": {**options, "serializer_secret": SECRET},
    }


def make_app(config: dict[str, Any]) -> tuple[flask.Flask, Cache, Counter[str]]:
    """Cached views (text, a JSON response, a 404, the default timeout) and a memoized function."""
    app = flask.Flask(__name__)
    app.config.update(config)
    cache = Cache(app)
    runs: Counter[str] = Counter()

    @cache.memoize(timeout=600)
    def price(item: str) -> dict[str, Any]:
        runs["price"] += 1
        return {"item": item, "price": 9.5}

    @app.get("/")
    @cache.cached(timeout=60)
    def index() -> str:
        runs["index"] += 1
        return f"{price('tea')['price']} per cup"

    @app.get("/missing")
    @cache.cached(timeout=60)
    def missing() -> str:
        runs["missing"] += 1
        flask.abort(404)

    @app.get("/json")
    @cache.cached(timeout=60)
    def as_json() -> flask.Response:
        runs["json"] += 1
        return flask.jsonify(price=9.5)

    @app.get("/default")
    @cache.cached()
    def default() -> str:
        runs["default"] += 1
        return "default timeout"

    return app, cache, runs


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING)
    return caplog


def test_cached_view_runs_once(config: dict[str, Any], errors: pytest.LogCaptureFixture) -> None:
    app, cache, runs = make_app(config)
    assert isinstance(cache.cache, MongoDBCache)
    client = app.test_client()
    for _ in range(2):
        assert client.get("/").get_data(as_text=True) == "9.5 per cup"
        assert client.get("/json").get_json() == {"price": 9.5}
    assert (runs["index"], runs["json"]) == (1, 1)
    assert not errors.records


def test_memoized_function_runs_once(config: dict[str, Any]) -> None:
    app, cache, runs = make_app(config)
    client = app.test_client()
    client.get("/")
    with app.app_context():
        assert cache.delete("view//")  # the view runs again; the memoized price does not
    client.get("/")
    assert runs == Counter({"index": 2, "price": 1})


def test_not_found_is_cached(config: dict[str, Any], errors: pytest.LogCaptureFixture) -> None:
    app, _, runs = make_app(config)
    client = app.test_client()
    assert client.get("/missing").status_code == 404
    assert client.get("/missing").status_code == 404
    assert runs["missing"] == 1
    assert not errors.records


def test_timeouts_expire(config: dict[str, Any], manager_options: dict[str, Any]) -> None:
    clock = manager_options["clock"]
    app, _, runs = make_app(config)
    client = app.test_client()
    for path in ("/", "/default"):
        client.get(path)
    clock.advance(29)  # inside both: 60 s given, 30 s CACHE_DEFAULT_TIMEOUT
    for path in ("/", "/default"):
        client.get(path)
    assert (runs["index"], runs["default"]) == (1, 1)
    clock.advance(2)  # past CACHE_DEFAULT_TIMEOUT only
    for path in ("/", "/default"):
        client.get(path)
    assert (runs["index"], runs["default"]) == (1, 2)
    clock.advance(30)  # past the view's own 60 s
    client.get("/")
    assert runs["index"] == 2


def test_clear_removes_only_its_prefix(
    config: dict[str, Any], manager_options: dict[str, Any], collection: Any
) -> None:
    app, cache, runs = make_app(config)
    other = CachelibMongoDBCache(key_prefix="app2:", **manager_options)
    other.set("kept", "value")
    app.test_client().get("/")
    assert {doc["_id"] for doc in collection.find()} >= {"app1:view//", "app2:kept"}
    with app.app_context():
        assert cache.clear()
    assert other.get("kept") == "value"
    assert not any(doc["_id"].startswith("app1:") for doc in collection.find())
    app.test_client().get("/")
    assert runs["index"] == 2


def test_stored_payload_is_signed(config: dict[str, Any], collection: Any) -> None:
    app, _, _ = make_app(config)
    client = app.test_client()
    client.get("/")
    doc = collection.find_one({"_id": "app1:view//"})
    assert isinstance(doc["value"], bytes)
    tampered = doc["value"][:-1] + bytes([doc["value"][-1] ^ 1])
    collection.update_one({"_id": doc["_id"]}, {"$set": {"value": tampered}})
    assert client.get("/").status_code == 200  # a miss: the view runs again


def test_native_serializer_does_not_cache_views(
    config: dict[str, Any], errors: pytest.LogCaptureFixture
) -> None:
    """Why the backend defaults to pickle: Flask-Caching only logs the refusal."""
    config["CACHE_OPTIONS"] = {**config["CACHE_OPTIONS"], "serializer": "native"}
    del config["CACHE_OPTIONS"]["serializer_secret"]
    app, _, runs = make_app(config)
    client = app.test_client()
    for _ in range(2):
        for path in ("/", "/json", "/missing"):
            client.get(path)
    # Text and a memoized dict are stored; a Response and a NotFound are not.
    assert runs == Counter({"index": 1, "price": 1, "json": 2, "missing": 2})
    assert "Exception possibly due to cache backend" in errors.text


def test_cachelib_class_through_cache_options(
    config: dict[str, Any], errors: pytest.LogCaptureFixture
) -> None:
    """The cachelib class works too, with every option in CACHE_OPTIONS."""
    options = config["CACHE_OPTIONS"]
    config = {
        "CACHE_TYPE": "mongo_session_backends.cachelib.MongoDBCache",
        "CACHE_OPTIONS": {
            **options,
            "uri": config["CACHE_MONGODB_URI"],
            "key_prefix": "app1:",
            "serializer": "pickle",
        },
    }
    app, cache, runs = make_app(config)
    assert type(cache.cache) is CachelibMongoDBCache
    client = app.test_client()
    client.get("/")
    client.get("/")
    assert runs["index"] == 1
    assert not errors.records


def test_outage_serves_uncached(config: dict[str, Any], errors: pytest.LogCaptureFixture) -> None:
    config["CACHE_MONGODB_URI"] = f"mongodb://127.0.0.1:{free_port()}/app"
    config["CACHE_OPTIONS"]["connection_options"] = {"serverSelectionTimeoutMS": 200}
    app, _, runs = make_app(config)
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/").status_code == 200
    assert runs["index"] == 2
    assert any(r.name == "mongo_session_backends" for r in errors.records)
    assert SECRET not in errors.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"CACHE_OPTIONS": {"database_name": "x"}}, "serializer_secret"),
        ({"CACHE_SERIALIZER": BaseSerializer}, "CACHE_SERIALIZER"),
        ({"CACHE_ARGS": ["x"]}, "CACHE_ARGS"),
        ({"CACHE_OPTIONS": {"uri": "mongodb://h/db", "serializer_secret": SECRET}}, "once"),
        (
            {"CACHE_OPTIONS": {"colection": "x", "serializer_secret": SECRET}},
            "colection for the Flask-Caching adapter; did you mean collection",
        ),
    ],
)
def test_configuration_mistakes(
    config: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    config.update(change)
    app = flask.Flask(__name__)
    app.config.update(config)
    with pytest.raises(ConfigurationError, match=message):
        Cache(app)
