"""Log out everywhere through each adapter: three clients, one user, two logged out."""

from __future__ import annotations

from typing import Any

import flask
import flask_login
import pytest
import webtest
from beaker.middleware import SessionMiddleware
from flask_session import Session

from mongo_session_backends import MongoManager
from mongo_session_backends.beaker import MongoSession
from mongo_session_backends.cachelib import MongoDBCache
from mongo_session_backends.flask import log_out_everywhere, log_out_other_sessions, other_sessions
from mongo_session_backends.pyramid import MongoSessionFactory

from .apps import pyramid_app

SECRET = "a-secret-of-enough-length"


class User(flask_login.UserMixin):
    def __init__(self, uid: str) -> None:
        self.id = uid


def flask_app(manager_options: dict[str, Any]) -> flask.Flask:
    app = flask.Flask(__name__)
    cache = MongoDBCache(owner_key="_user_id", **manager_options)
    app.config.update(SESSION_TYPE="cachelib", SESSION_CACHELIB=cache, SECRET_KEY=SECRET)
    Session(app)
    login = flask_login.LoginManager(app)
    login.user_loader(User)

    @app.post("/login")
    def log_in() -> str:
        app.session_interface.regenerate(flask.session)  # type: ignore[attr-defined]
        flask_login.login_user(User(flask.request.form["user"]))
        return "ok"

    @app.get("/")
    def whoami() -> str:
        user = flask_login.current_user
        return str(user.id) if user.is_authenticated else "anonymous"

    @app.get("/others")
    def others() -> str:
        return str(len(other_sessions()))

    @app.post("/logout-others")
    def logout_others() -> str:
        return str(log_out_other_sessions())

    @app.post("/password")
    def password() -> str:
        return str(log_out_everywhere(flask_login.current_user.id))

    return app


def test_flask_session_with_flask_login(manager_options: dict[str, Any]) -> None:
    app = flask_app(manager_options)
    clients = [app.test_client() for _ in range(3)]
    for client in clients:
        client.post("/login", data={"user": "ada"})
        assert client.get("/").text == "ada"
    assert clients[0].get("/others").text == "2"
    assert clients[0].post("/logout-others").text == "2"
    assert clients[0].get("/").text == "ada"  # the current one continues
    assert [c.get("/").text for c in clients[1:]] == ["anonymous", "anonymous"]
    assert clients[0].post("/password").text == "1"
    assert clients[0].get("/").text == "anonymous"


def test_flask_session_revoked_while_in_flight(manager_options: dict[str, Any]) -> None:
    app = flask_app(manager_options)

    @app.post("/slow")
    def slow() -> str:
        flask.session["cart"] = [1]
        log_out_everywhere("ada")  # another request revokes while this one runs
        return "saved"

    client = app.test_client()
    client.post("/login", data={"user": "ada"})
    assert client.post("/slow").text == "saved"
    assert client.get("/").text == "anonymous"  # the late save did not bring it back


def pyramid_view(request: Any) -> Any:
    session = request.session
    action = request.params.get("do")
    if action == "login":
        session.rotate()
        session["auth.userid"] = request.params["user"]
    elif action == "others":
        request.response.text = str(len(session.other_sessions()))
        return request.response
    elif action == "logout-others":
        request.response.text = str(session.log_out_other_sessions())
        return request.response
    request.response.text = str(session.get("auth.userid", "anonymous"))
    return request.response


def test_pyramid(manager_options: dict[str, Any], collection: Any) -> None:
    manager = MongoManager(owner_key="auth.userid", **manager_options)
    factory = MongoSessionFactory(SECRET, manager=manager)
    clients = [pyramid_app(pyramid_view, factory=factory) for _ in range(3)]
    before = []
    for client in clients:
        client.get("/")
        client.get("/", params={"do": "login", "user": "ada"})
        before.append(client.cookies.get("session"))
        assert client.get("/").text == "ada"
    assert collection.count_documents({"user": "ada"}) == 3
    assert clients[0].get("/", params={"do": "others"}).text == "2"
    assert clients[0].get("/", params={"do": "logout-others"}).text == "2"
    assert clients[0].get("/").text == "ada"
    assert [c.get("/").text for c in clients[1:]] == ["anonymous", "anonymous"]
    assert len(manager.sessions("ada")) == 1


def test_pyramid_rotate_keeps_data_and_drops_the_old_id(
    manager_options: dict[str, Any], collection: Any
) -> None:
    factory = MongoSessionFactory(SECRET, owner_key="auth.userid", **manager_options)

    def view(request: Any) -> Any:
        if request.params.get("do") == "login":
            request.session.rotate()
            request.session["auth.userid"] = "ada"
        else:
            request.session["cart"] = [1]
        request.response.text = str(sorted(request.session))
        return request.response

    client = pyramid_app(view, factory=factory)
    client.get("/")
    old = {d["_id"] for d in collection.find()}
    assert client.get("/", params={"do": "login"}).text == "['auth.userid', 'cart']"
    new = {d["_id"] for d in collection.find()}
    assert len(new) == 1 and not new & old


@pytest.mark.parametrize("regenerate", [False, True])
def test_beaker(manager_options: dict[str, Any], collection: Any, regenerate: bool) -> None:
    manager = MongoManager(owner_key="user", **manager_options)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = environ["beaker.session"]
        if environ["PATH_INFO"] == "/login":
            if regenerate:
                session.regenerate_id()
            session["user"] = "ada"
            session.save()
        text = str(session.get("user", "anonymous"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [text.encode()]

    options = {"session.type": "mongodb", "session.session_class": MongoSession}
    clients = [webtest.TestApp(SessionMiddleware(app, options, manager=manager)) for _ in range(3)]
    for client in clients:
        client.get("/login")
        assert client.get("/").text == "ada"
    assert len(manager.sessions("ada")) == 3
    keep = clients[0].cookies["beaker.session.id"]
    assert manager.revoke("ada", keep=f"beaker:{len(keep)}:{keep}:session") == 2
    assert clients[0].get("/").text == "ada"
    assert [c.get("/").text for c in clients[1:]] == ["anonymous", "anonymous"]
    if regenerate:
        assert collection.count_documents({}) == 3  # no record left under a pre-login id
