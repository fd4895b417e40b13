"""A small web app that keeps its sessions in MongoDB through this package.

The same pages are served by Flask (Flask-Session and
:class:`~mongo_session_backends.cachelib.MongoDBCache`), Pyramid
(:class:`~mongo_session_backends.pyramid.MongoSessionFactory`) or Beaker
(:class:`~mongo_session_backends.beaker.MongoNamespaceManager`): ``/`` shows
the visitor's session, ``POST /set`` stores a key, ``POST /logout`` ends the
session, and the page counts the live sessions in MongoDB.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from .manager import MongoManager

__all__ = ["FRAMEWORKS", "make_app", "render_page"]

FRAMEWORKS = ("flask", "pyramid", "beaker")
SECRET = "demo-only-secret-do-not-use-in-production"  # noqa: S105 - a local demo
EMPTY_ROW = '<tr><td colspan="2">empty</td></tr>'
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def render_page(framework: str, session: Mapping[Any, Any], live: int) -> str:
    """The demo's only page: the session, a form, and the live count."""
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(repr(v))}</td></tr>"
        for k, v in session.items()
        if not str(k).startswith("_")
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>mongo-session-backends demo</title></head>
<body>
<h1>Your session ({html.escape(framework)})</h1>
<table border="1"><tr><th>key</th><th>value</th></tr>{rows or EMPTY_ROW}</table>
<form method="post" action="/set">
  <input name="key" placeholder="key" required> <input name="value" placeholder="value">
  <button type="submit">Store</button>
</form>
<form method="post" action="/logout"><button type="submit">Log out</button></form>
<p>Live sessions in MongoDB: <strong id="live">{live}</strong></p>
</body></html>
"""


def _form(body: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}


def _flask_app(manager: MongoManager) -> WSGIApp:
    import flask
    from flask_session import Session

    from .cachelib import MongoDBCache

    cache = MongoDBCache(manager=manager)
    app = flask.Flask("mongo_session_backends.demo")
    app.config.update(SESSION_TYPE="cachelib", SESSION_CACHELIB=cache, SECRET_KEY=SECRET)
    Session(app)

    @app.get("/")
    def index() -> str:
        return render_page("flask", flask.session, manager.count(all_prefixes=True))

    @app.post("/set")
    def store() -> Any:
        form = flask.request.form
        flask.session[form["key"]] = form.get("value", "")
        return flask.redirect("/", 303)

    @app.post("/logout")
    def logout() -> Any:
        flask.session.clear()
        return flask.redirect("/", 303)

    return app.wsgi_app


def _pyramid_app(manager: MongoManager) -> WSGIApp:
    from pyramid.config import Configurator
    from pyramid.httpexceptions import HTTPSeeOther
    from pyramid.response import Response

    from .pyramid import MongoSessionFactory

    factory = MongoSessionFactory(SECRET, manager=manager)
    config = Configurator()
    config.set_session_factory(factory)

    def index(request: Any) -> Response:
        return Response(render_page("pyramid", request.session, manager.count(all_prefixes=True)))

    def store(request: Any) -> HTTPSeeOther:
        request.session[request.POST["key"]] = request.POST.get("value", "")
        return HTTPSeeOther("/")

    def logout(request: Any) -> HTTPSeeOther:
        request.session.invalidate()
        return HTTPSeeOther("/")

    for name, view, method in (("index", index, "GET"), ("set", store, "POST")):
        config.add_route(name, "/" if name == "index" else f"/{name}")
        config.add_view(view, route_name=name, request_method=method)
    config.add_route("logout", "/logout")
    config.add_view(logout, route_name="logout", request_method="POST")
    return config.make_wsgi_app()  # type: ignore[no-any-return]


def _beaker_app(manager: MongoManager) -> WSGIApp:
    from beaker.middleware import SessionMiddleware

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        session = environ["beaker.session"]
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        if method == "POST" and path in ("/set", "/logout"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            form = _form(environ["wsgi.input"].read(length))
            if path == "/set":
                session[form["key"]] = form.get("value", "")
                session.save()
            else:
                session.delete()
            start_response("303 See Other", [("Location", "/")])
            return [b""]
        live = manager.count(all_prefixes=True)
        body = render_page("beaker", session, live).encode("utf-8")
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body]

    options = {"session.type": "mongodb", "session.key": "demo", "session.data_serializer": "json"}
    return SessionMiddleware(app, options, manager=manager)  # type: ignore[no-any-return]


def make_app(framework: str, manager: MongoManager) -> WSGIApp:
    """Return the demo WSGI app for ``framework`` on ``manager``."""
    builders = {"flask": _flask_app, "pyramid": _pyramid_app, "beaker": _beaker_app}
    return builders[framework](manager)
