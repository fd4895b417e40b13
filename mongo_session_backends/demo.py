"""A small web app that keeps its sessions in MongoDB through this package.

The same page is served by Flask (Flask-Session and
:class:`~mongo_session_backends.cachelib.MongoDBCache`), Pyramid
(:class:`~mongo_session_backends.pyramid.MongoSessionFactory`) or Beaker
(:class:`~mongo_session_backends.beaker.MongoNamespaceManager`): ``GET /``
shows the visitor's session, ``POST /set`` stores a key, ``POST /logout`` ends
the session and deletes it from MongoDB, and the page counts the live sessions
in MongoDB. Other paths answer 404 and other methods 405, in all three.

:func:`run` serves it (the ``mongo-sessions demo`` command) on a threaded
server from the standard library, so an idle browser never holds up another.
"""

from __future__ import annotations

import argparse
import errno
import html
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from string import Template
from types import FrameType
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from .exceptions import ConfigurationError
from .manager import MongoManager, mask_uri

__all__ = ["FRAMEWORKS", "DemoServer", "make_app", "make_server", "render_page", "run"]

#: The frameworks the demo can run on.
FRAMEWORKS = ("flask", "pyramid", "beaker")
SECRET = "demo-only-secret-do-not-use-in-production"  # noqa: S105 - a local demo
#: The demo's paths and the one method each answers (``GET`` also answers ``HEAD``).
ROUTES = {"/": "GET", "/set": "POST", "/logout": "POST"}
#: The largest form body the demo accepts, in bytes; larger ones get 413.
MAX_FORM_BYTES = 1_000_000
#: The demo keeps each session well under MongoDB's 16 MB document limit.
MAX_SESSION_CHARS = 4 * 1024 * 1024
TOO_LARGE = "The demo keeps a session under 4 MB: log out, or store something smaller."
#: Seconds a connection may stay silent before the server drops it.
IDLE_TIMEOUT = 30
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

PAGE = Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mongo-session-backends demo ($framework)</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { border: 1px solid #bbb; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th:first-child { width: 30%; }
td, .value { white-space: pre-wrap; overflow-wrap: anywhere; }
.value { max-height: 12rem; overflow-y: auto; }
.error { color: #a00; font-weight: bold; }
.note { color: #555; }
</style></head>
<body>
<h1>Your session ($framework)</h1>
$error<table>
<tr><th>key</th><th>value</th></tr>
$rows
</table>
$hidden<form method="post" action="/set">
  <input name="key" placeholder="key" required> <input name="value" placeholder="value">
  <button type="submit">Store</button>
</form>
<form method="post" action="/logout"><button type="submit">Log out</button></form>
<p>Live sessions in MongoDB: <strong id="live">$live</strong></p>
<p class="note">Open this page in a second browser or a private window and store a key
there: that session is separate from this one, and the live count goes up by one.
Log out deletes your session from MongoDB.</p>
</body></html>
""")
EMPTY_ROW = '<tr><td colspan="2" id="empty">empty</td></tr>'
EMPTY_KEY = "The key is empty: type a key to store the value under."
RESERVED_KEY = (
    "Keys starting with _ are kept for the framework's own data "
    "(such as Beaker's _accessed_time): choose another key."
)


def _allow(method: str) -> str:
    """The ``Allow`` header of a path that answers ``method``."""
    return "GET, HEAD" if method == "GET" else method


def _internal(key: Any) -> bool:
    return str(key).startswith("_")


def render_page(
    framework: str, session: Mapping[Any, Any], live: int, error: str | None = None
) -> str:
    """Return the demo's only page.

    :param framework: the framework's name, shown in the title.
    :param session: the visitor's session. Keys starting with ``_`` are the
        framework's own: the page names them in a note instead of a row.
    :param live: the number of live sessions in MongoDB.
    :param error: why the last store was refused, shown above the table.
        Default ``None``: no message.
    """
    esc = html.escape
    rows = "".join(
        f'<tr><td>{esc(str(k))}</td><td><div class="value">{esc(str(v))}</div></td></tr>'
        for k, v in session.items()
        if not _internal(k)
    )
    hidden = ", ".join(esc(str(k)) for k in session if _internal(k))
    return PAGE.substitute(
        framework=esc(framework),
        error=f'<p class="error" role="alert">{esc(error)}</p>\n' if error else "",
        rows=rows or EMPTY_ROW,
        hidden=f'<p class="note">Not shown: {esc(framework)}\'s own keys {hidden}.</p>\n'
        if hidden
        else "",
        live=live,
    )


def _store(session: MutableMapping[str, Any], form: Mapping[str, str]) -> str | None:
    """Store the form's ``value`` under its ``key`` in ``session``.

    Returns ``None``, or the reason nothing was stored: the key is missing or
    blank, or starts with ``_`` (those keys are the framework's own), or the
    session would grow past :data:`MAX_SESSION_CHARS`.
    """
    key = form.get("key", "").strip()
    if not key:
        return EMPTY_KEY
    if _internal(key):
        return RESERVED_KEY
    value = form.get("value", "")
    kept = sum(len(str(v)) for k, v in session.items() if k != key and not _internal(str(k)))
    if kept + len(value) > MAX_SESSION_CHARS:
        return TOO_LARGE
    session[key] = value
    return None


def _flask_app(manager: MongoManager) -> WSGIApp:
    import flask
    from flask_session import Session

    from .cachelib import MongoDBCache

    app = flask.Flask("mongo_session_backends.demo")
    app.config.update(
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=MongoDBCache(manager=manager),
        SECRET_KEY=SECRET,
        MAX_CONTENT_LENGTH=MAX_FORM_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_FORM_BYTES,
    )
    Session(app)

    def page(error: str | None = None) -> str:
        return render_page("flask", flask.session, manager.count(all_prefixes=True), error)

    def set_key() -> Any:
        error = _store(flask.session, flask.request.form)
        return (page(error), 400) if error else flask.redirect("/", 303)

    def logout() -> Any:
        flask.session.clear()  # Flask-Session deletes an emptied session
        return flask.redirect("/", 303)

    for path, view in (("/", page), ("/set", set_key), ("/logout", logout)):
        app.add_url_rule(
            path, view.__name__, view, methods=[ROUTES[path]], provide_automatic_options=False
        )
    return app.wsgi_app


def _pyramid_app(manager: MongoManager) -> WSGIApp:
    from pyramid.config import Configurator
    from pyramid.httpexceptions import (
        HTTPMethodNotAllowed,
        HTTPRequestEntityTooLarge,
        HTTPSeeOther,
    )
    from pyramid.response import Response

    from .pyramid import MongoSessionFactory

    config = Configurator()
    config.set_session_factory(MongoSessionFactory(SECRET, manager=manager))

    def page(request: Any, error: str | None = None) -> Response:
        live = manager.count(all_prefixes=True)
        return Response(
            render_page("pyramid", request.session, live, error), status=400 if error else 200
        )

    def set_key(request: Any) -> Response:
        if (request.content_length or 0) > MAX_FORM_BYTES:
            return HTTPRequestEntityTooLarge()
        error = _store(request.session, request.POST)
        return page(request, error) if error else HTTPSeeOther("/")

    def logout(request: Any) -> Response:
        request.session.invalidate()  # deletes the stored session
        return HTTPSeeOther("/")

    def not_allowed(request: Any) -> Response:
        return HTTPMethodNotAllowed(headers={"Allow": _allow(ROUTES[request.path_info])})

    for path, view in (("/", page), ("/set", set_key), ("/logout", logout)):
        config.add_route(path, path)
        config.add_view(view, route_name=path, request_method=ROUTES[path])
        config.add_view(not_allowed, route_name=path)  # any other method
    return config.make_wsgi_app()  # type: ignore[no-any-return]


def _text(start_response: Callable[..., Any], status: str, **headers: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), *headers.items()])
    return [status.encode("ascii") + b"\n"]


def _read_form(environ: dict[str, Any]) -> dict[str, str] | str:
    """The request's urlencoded form, or the status line that refuses it."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return "400 Bad Request"
    if length > MAX_FORM_BYTES:
        return "413 Request Entity Too Large"
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


def _beaker_app(manager: MongoManager) -> WSGIApp:
    from beaker.middleware import SessionMiddleware

    from .beaker import MongoSession

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path, method = environ.get("PATH_INFO") or "/", environ["REQUEST_METHOD"]
        allowed = ROUTES.get(path)
        if allowed is None:
            return _text(start_response, "404 Not Found")
        if method != allowed and (method, allowed) != ("HEAD", "GET"):
            return _text(start_response, "405 Method Not Allowed", Allow=_allow(allowed))
        session = environ["beaker.session"]
        error = None
        if path == "/logout":
            session.delete()  # MongoSession deletes the stored record
        elif path == "/set":
            form = _read_form(environ)
            if isinstance(form, str):
                return _text(start_response, form)
            error = _store(session, form)
            if error is None:
                session.save()
        if path != "/" and error is None:
            start_response("303 See Other", [("Location", "/")])
            return [b""]
        live = manager.count(all_prefixes=True)
        body = render_page("beaker", session, live, error).encode("utf-8")
        status = "400 Bad Request" if error else "200 OK"
        start_response(status, [("Content-Type", "text/html; charset=utf-8")])
        return [] if method == "HEAD" else [body]

    options = {
        "session.type": "mongodb",
        "session.key": "demo",
        "session.data_serializer": "json",
        "session.httponly": True,
        "session.session_class": MongoSession,
    }
    return SessionMiddleware(app, options, manager=manager)  # type: ignore[no-any-return]


def make_app(framework: str, manager: MongoManager) -> WSGIApp:
    """Return the demo WSGI app.

    :param framework: one of :data:`FRAMEWORKS`; another name raises
        :class:`~mongo_session_backends.ConfigurationError`.
    :param manager: the manager that stores the sessions.
    """
    _check_framework(framework)
    builders = {"flask": _flask_app, "pyramid": _pyramid_app, "beaker": _beaker_app}
    return builders[framework](manager)


def _check_framework(framework: str) -> None:
    if framework not in FRAMEWORKS:
        raise ConfigurationError(
            f"unknown demo framework {framework!r}: use one of {', '.join(FRAMEWORKS)}"
        )


class _Handler(WSGIRequestHandler):
    timeout = IDLE_TIMEOUT  # a silent connection frees its thread


class DemoServer(socketserver.ThreadingMixIn, WSGIServer):
    """The demo's HTTP server: each connection in its own daemon thread.

    Build it with :func:`make_server`.
    """

    daemon_threads = True
    allow_reuse_port = False  # a port in use must be refused

    def __init__(self, address: tuple[Any, ...], family: socket.AddressFamily) -> None:
        self.address_family = family
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind and set up the WSGI environ, without a reverse DNS lookup."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])
        self.setup_environ()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Print the traceback, unless a client just went away or stayed silent."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def make_server(host: str, port: int, app: WSGIApp | None = None) -> DemoServer:
    """Bind the demo's server to ``host`` and ``port``; it serves nothing yet.

    :param host: a name or address of this machine.
    :param port: the TCP port, 1 to 65535.
    :param app: the WSGI app. Default ``None``: give it later with
        ``set_app``, once MongoDB is ready.

    Raises :class:`~mongo_session_backends.ConfigurationError` with a
    one-line reason when the port is out of range, the host does not
    resolve, or the address cannot be bound (in use, not on this machine, or
    not permitted).
    """
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"port {port} is out of range: use 1 to 65535")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigurationError(f"cannot serve on host {host!r}: {reason}") from None
    family, _, _, _, address = found[0]
    try:
        server = DemoServer(address, family)
    except OSError as exc:
        hint = " (is another demo running? choose another --port)"
        extra = hint if exc.errno == errno.EADDRINUSE else ""
        raise ConfigurationError(
            f"cannot serve on {_authority(host, port)}: {exc.strerror}{extra}"
        ) from None
    if app is not None:
        server.set_app(app)
    return server


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Stop(BaseException):
    """Raised by the SIGTERM handler to unwind like Ctrl+C."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def run(
    args: argparse.Namespace, make_manager: Callable[[argparse.Namespace], MongoManager]
) -> int:
    """Serve the demo until Ctrl+C or SIGTERM; return the exit status.

    The framework, host and port are checked (the address by binding it)
    before anything starts.

    :param args: ``uri`` (``None``: start the embedded server and set
        ``args.uri`` to its URI), ``timeout`` (seconds to wait for MongoDB),
        ``framework`` (one of :data:`FRAMEWORKS`), ``host``, ``port``, and
        whatever ``make_manager`` reads.
    :param make_manager: builds the manager from ``args``, once ``args.uri``
        is set.

    Returns 0 once stopped, or 2 after printing one line on stderr when the
    framework is unknown or the host or port cannot be served. When the
    embedded server cannot start or MongoDB does not answer, the
    :class:`~mongo_session_backends.MongoSessionError` propagates, after
    everything started has been stopped.
    """
    from .embedded import EmbeddedServer

    try:
        _check_framework(args.framework)
        httpd = make_server(args.host, args.port)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if in_main else None
    server: EmbeddedServer | None = None
    manager: MongoManager | None = None
    try:
        if args.uri is None:
            server = EmbeddedServer()
            server.start()
            args.uri = server.uri
            print(
                f"No --uri given: started the embedded MongoDB-compatible server at {server.uri}",
                flush=True,
            )
        manager = make_manager(args)
        manager.ping(args.timeout)
        httpd.set_app(make_app(args.framework, manager))
        url = f"http://{_authority(args.host, httpd.server_port)}/"
        print(
            f"Serving the {args.framework} demo on {url} "
            f"with sessions in {mask_uri(args.uri)} (Ctrl+C to stop)",
            flush=True,
        )
        httpd.serve_forever()
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        httpd.server_close()
        if manager is not None:
            manager.close()
        if server is not None:
            server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
