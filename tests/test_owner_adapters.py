"""Log out everywhere through each adapter: three clients, one user, two logged out."""

from __future__ import annotations

from typing import Any

import flask
import flask_login
import pytest
import webtest
from beaker.middleware import SessionMiddleware
from flask_session import Session

from mongo_session_backends import ConfigurationError, MongoManager
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


# -- the async frameworks' helpers: "log out other devices" and "log out everywhere" --------


async def _log_out_scenario(clients: list[Any], call: Any) -> None:
    """Three clients log in as ada; the first logs the others out, then everyone."""
    for client in clients:
        assert await call(client, "/login") == "ok"
    current = clients[0]
    assert await call(current, "/others") == "2"
    assert await call(current, "/log-out-others") == "2"
    assert [await call(c, "/") for c in clients] == ["ada", "anonymous", "anonymous"]
    assert await call(current, "/others") == "0"
    assert await call(current, "/log-out-everywhere") == "1"
    assert await call(current, "/") == "anonymous"
    assert await call(clients[1], "/log-out-others") == "0"  # nobody logged in


async def test_starsessions_helpers(manager_options: dict[str, Any]) -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient
    from starsessions import SessionAutoloadMiddleware, SessionMiddleware

    from mongo_session_backends import starlette as star

    async def login(request: Request) -> PlainTextResponse:
        await star.regenerate_session_id(request)
        request.session["user"] = "ada"
        return PlainTextResponse("ok")

    async def whoami(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.session.get("user", "anonymous"))

    async def others(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await star.other_sessions(request))))

    async def log_out_others(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(await star.log_out_other_sessions(request)))

    async def everywhere(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(await star.log_out_everywhere(request, "ada")))

    views = {"/login": login, "/": whoami, "/others": others,
             "/log-out-others": log_out_others, "/log-out-everywhere": everywhere}  # fmt: skip
    store = star.MongoDBStore(owner_key="user", **manager_options)
    app = Starlette(
        routes=[Route(path, view) for path, view in views.items()],
        middleware=[
            Middleware(SessionMiddleware, store=store),
            Middleware(SessionAutoloadMiddleware),
        ],
    )
    with TestClient(app, base_url="https://testserver") as first:
        clients = [first] + [TestClient(app, base_url="https://testserver") for _ in range(2)]
        for other in clients[1:]:
            other.portal = first.portal  # the same running app and loop

        async def call(client: Any, path: str) -> str:
            return str(client.get(path).text)

        await _log_out_scenario(clients, call)
    plain = star.MongoDBStore(**manager_options)
    with TestClient(Starlette(routes=[Route("/", log_out_others)], middleware=[
        Middleware(SessionMiddleware, store=plain), Middleware(SessionAutoloadMiddleware),
    ])) as client, pytest.raises(ConfigurationError, match="owner_key"):  # fmt: skip
        client.get("/")


async def test_aiohttp_helpers(manager_options: dict[str, Any], aiohttp_client: Any) -> None:
    from aiohttp import web
    from aiohttp_session import get_session, new_session, setup

    from mongo_session_backends import aiohttp as aio

    async def login(request: web.Request) -> web.Response:
        session = await new_session(request)
        session["user"] = "ada"
        return web.Response(text="ok")

    async def whoami(request: web.Request) -> web.Response:
        return web.Response(text=str((await get_session(request)).get("user", "anonymous")))

    async def others(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await aio.other_sessions(request))))

    async def log_out_others(request: web.Request) -> web.Response:
        return web.Response(text=str(await aio.log_out_other_sessions(request)))

    async def everywhere(request: web.Request) -> web.Response:
        return web.Response(text=str(await aio.log_out_everywhere(request, "ada")))

    app = web.Application()
    setup(app, aio.MongoDBStorage(owner_key="user", **manager_options))
    views = {"/login": login, "/": whoami, "/others": others,
             "/log-out-others": log_out_others, "/log-out-everywhere": everywhere}  # fmt: skip
    for path, view in views.items():
        app.router.add_get(path, view)
    clients = [await aiohttp_client(app) for _ in range(3)]

    async def call(client: Any, path: str) -> str:
        return str(await (await client.get(path)).text())

    await _log_out_scenario(clients, call)


async def test_litestar_helpers(manager_options: dict[str, Any]) -> None:
    from litestar import Litestar, Request, get
    from litestar.middleware.session.server_side import ServerSideSessionConfig
    from litestar.testing import TestClient

    from mongo_session_backends import litestar as lit

    @get("/login")
    async def login(request: Request[Any, Any, Any]) -> str:
        request.set_session({"user": "ada"})
        return "ok"

    @get("/")
    async def whoami(request: Request[Any, Any, Any]) -> str:
        return str(request.session.get("user", "anonymous"))

    @get("/others")
    async def others(request: Request[Any, Any, Any]) -> str:
        return str(len(await lit.other_sessions(request)))

    @get("/log-out-others")
    async def log_out_others(request: Request[Any, Any, Any]) -> str:
        return str(await lit.log_out_other_sessions(request))

    @get("/log-out-everywhere")
    async def everywhere(request: Request[Any, Any, Any]) -> str:
        return str(await lit.log_out_everywhere(request, "ada"))

    app = Litestar(
        [login, whoami, others, log_out_others, everywhere],
        middleware=[ServerSideSessionConfig().middleware],
        stores={"sessions": lit.MongoDBStore(owner_key="user", **manager_options)},
    )
    with TestClient(app, base_url="https://testserver") as first:
        clients = [first] + [TestClient(app, base_url="https://testserver") for _ in range(2)]
        for other in clients[1:]:
            other.portal = first.portal  # type: ignore[misc]  # the same running app and loop

        async def call(client: Any, path: str) -> str:
            return str(client.get(path).text)

        await _log_out_scenario(clients, call)
