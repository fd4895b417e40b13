"""Flask-Session with SESSION_TYPE = "cachelib" on MongoDBCache, end to end."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import flask
import pytest
from flask_session import Session
from markupsafe import Markup

from mongo_session_backends.cachelib import MongoDBCache


@pytest.fixture
def app(manager_options: dict[str, Any]) -> flask.Flask:
    app = flask.Flask(__name__)
    cache = MongoDBCache(**manager_options)
    app.config.update(
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=cache,
        SESSION_PERMANENT=True,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=10),
        SECRET_KEY="test-secret",
    )
    Session(app)

    @app.post("/set/<name>")
    def set_value(name: str) -> str:
        flask.session[name] = flask.request.get_data(as_text=True)
        return "ok"

    @app.post("/rich")
    def rich() -> str:
        flask.session["rich"] = {
            "tuple": (1, 2),
            "bytes": b"\x00\x01",
            "when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
            "markup": Markup("<b>hi</b>"),
            "id": uuid.UUID(int=7),
        }
        return "ok"

    @app.get("/get/<name>")
    def get_value(name: str) -> str:
        return repr(flask.session.get(name))

    @app.post("/clear")
    def clear() -> str:
        flask.session.clear()
        return "ok"

    app.extensions["test_cache"] = cache
    return app


def test_session_round_trip(app: flask.Flask, collection: Any) -> None:
    client = app.test_client()
    client.post("/set/name", data="alice")
    assert client.get("/get/name").text == "'alice'"
    client.post("/set/name", data="bob")
    assert client.get("/get/name").text == "'bob'"
    doc = collection.find_one()
    assert doc["_id"].startswith("session:")
    assert doc["value"]["name"] == "bob"  # readable in MongoDB
    client.post("/clear")
    assert client.get("/get/name").text == "None"


def test_flask_types_round_trip(app: flask.Flask) -> None:
    client = app.test_client()
    client.post("/rich")
    text = client.get("/get/rich").text
    assert "(1, 2)" in text and "b'\\x00\\x01'" in text and "Markup" in text and "UUID" in text


def test_sessions_are_separate(app: flask.Flask) -> None:
    a, b = app.test_client(), app.test_client()
    a.post("/set/name", data="alice")
    assert b.get("/get/name").text == "None"


def test_expiry_is_honoured(app: flask.Flask, clock: Any) -> None:
    client = app.test_client()
    client.post("/set/name", data="alice")
    clock.advance(599)
    assert client.get("/get/name").text == "'alice'"  # refreshed on this request
    clock.advance(601)
    assert client.get("/get/name").text == "None"
