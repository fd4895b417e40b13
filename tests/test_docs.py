"""Every code snippet of the README and the docs runs as pasted, against the test server.

Python blocks (```python fences, ``.. code-block:: python`` and ``::`` literal
blocks, which Sphinx highlights as Python) are executed; ``ini`` blocks are
loaded into Beaker or Pyramid. Shell and text blocks are not run, so a block
that is not meant to run must say ``sh``, ``ini`` or ``text``.

Before a snippet runs, its documented hosts (``localhost``, ``127.0.0.1``,
``db.example.com``) are replaced by the test server, its database by one of
its own, and the environment variables it names are set. Afterwards every
manager it created must answer a ping, every web app it defines serves two
requests with one cookie jar, and nothing may be logged at WARNING or above.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
import textwrap
import traceback
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import webtest
from pymongo import MongoClient

from mongo_session_backends import MongoManager, adapter, generate_key

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED_HOSTS = {"localhost", "127.0.0.1", "db.example.com", "db"}
PYTHON = {"python", "python3", "py", "default"}


@dataclass(frozen=True)
class Snippet:
    path: str  # relative to the repository
    line: int  # line of the block's first line of code
    language: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.path}:{self.line}"


# -- extraction ----------------------------------------------------------------


def markdown_snippets(path: Path, name: str) -> Iterator[Snippet]:
    lines = path.read_text(encoding="utf-8").splitlines()
    fence = re.compile(r"^(\s*)```(\w*)\s*$")
    i = 0
    while i < len(lines):
        start = fence.match(lines[i])
        i += 1
        if not start:
            continue
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        i += 1
        yield Snippet(name, i - len(body), start.group(2) or "text", "\n".join(body))


_DIRECTIVE = re.compile(r"^(\s*)\.\. (?:code-block|code|sourcecode)::\s*(\S*)\s*$")
_HIGHLIGHT = re.compile(r"^\s*\.\. highlight::\s*(\S+)\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def rst_snippets(path: Path, name: str) -> Iterator[Snippet]:
    """Code-block directives, and ``::`` literal blocks in the current highlight language."""
    lines = path.read_text(encoding="utf-8").splitlines()
    highlight = "default"
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if m := _HIGHLIGHT.match(line):
            highlight = m.group(1)
            continue
        if m := _DIRECTIVE.match(line):
            language = m.group(2) or highlight
            # Directive options (":linenos:") sit right under the directive.
            while i < len(lines) and lines[i].strip().startswith(":"):
                i += 1
        elif line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            language = highlight
        else:
            continue
        base = _indent(line)
        body: list[str] = []
        first = 0
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
            if lines[i].strip() and not first:
                first = i + 1
            body.append(lines[i])
            i += 1
        code = textwrap.dedent("\n".join(body)).strip("\n")
        if code:
            yield Snippet(name, first, language, code)


def all_snippets() -> list[Snippet]:
    found = list(markdown_snippets(ROOT / "README.md", "README.md"))
    for path in sorted((ROOT / "docs").rglob("*.rst")):
        if "_build" not in path.parts:
            found.extend(rst_snippets(path, path.relative_to(ROOT).as_posix()))
    return found


SNIPPETS = all_snippets()

#: Blocks in pages this suite does not fix, with the reason they fail.
#: Keyed by page and a piece of the block's text, so edits elsewhere do not move them.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def known_failure(snippet: Snippet) -> str | None:
    for (path, marker), reason in KNOWN_FAILURES.items():
        if snippet.path == path and marker in snippet.code:
            return reason
    return None


def cases(language: set[str]) -> list[Any]:
    params = []
    for snippet in SNIPPETS:
        if snippet.language not in language:
            continue
        reason = known_failure(snippet)
        marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
        params.append(pytest.param(snippet, id=snippet.name, marks=marks))
    return params


# -- running -------------------------------------------------------------------


class SnippetRun:
    """Rewrites a snippet for the test server, records what it builds, cleans up."""

    def __init__(self, mongodb_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server = urlsplit(mongodb_uri)
        self.database = "docs_" + uuid.uuid4().hex[:12]
        self.managers: list[MongoManager] = []
        self.monkeypatch = monkeypatch
        original = MongoManager.__init__
        managers = self.managers

        def recording_init(manager: MongoManager, *args: Any, **kwargs: Any) -> None:
            original(manager, *args, **kwargs)
            managers.append(manager)

        monkeypatch.setattr(MongoManager, "__init__", recording_init)

    def uri(self, match: re.Match[str]) -> str:
        documented = urlsplit(match.group(0))
        if documented.hostname not in DOCUMENTED_HOSTS:
            return match.group(0)
        return urlunsplit(self.server._replace(path="/" + self.database))

    def rewrite(self, code: str) -> str:
        code = re.sub(r"mongodb(?:\+srv)?://[^\s\"'`,]+", self.uri, code)
        code = re.sub(r"(database_name\s*=\s*)([\"'])[^\"']*\2", rf"\1'{self.database}'", code)
        names = re.findall(r"env:([A-Za-z_]\w*)", code)
        names += re.findall(r"(?:environ\[|getenv\()[\"'](\w+)", code)
        for name in names:
            self.monkeypatch.setenv(
                name, generate_key() if "KEY" in name else secrets.token_hex(24)
            )
        return code

    def check_managers(self) -> None:
        for manager in self.managers:
            manager.ping(timeout=5)

    def close(self, admin_client: MongoClient[Any]) -> None:
        for key, manager in list(adapter._shared.items()):
            if manager in self.managers:
                del adapter._shared[key]
        for manager in self.managers:
            manager.close()
        admin_client.drop_database(self.database)


@pytest.fixture
def run(
    mongodb_uri: str, monkeypatch: pytest.MonkeyPatch, admin_client: MongoClient[Any]
) -> Iterator[SnippetRun]:
    snippet_run = SnippetRun(mongodb_uri, monkeypatch)
    yield snippet_run
    snippet_run.close(admin_client)


def explain(snippet: Snippet, exc: Exception) -> str:
    """The snippet's own lines of the traceback, the innermost frame, and the error."""
    frames = traceback.extract_tb(exc.__traceback__)
    shown = [f for f in frames[:-1] if f.filename == snippet.path] + frames[-1:]
    return "".join(traceback.format_list(shown) + traceback.format_exception_only(exc))


def fail(snippet: Snippet, what: str) -> None:
    pytest.fail(f"{snippet.name}: {what}", pytrace=False)


def no_warnings_logged(snippet: Snippet, caplog: pytest.LogCaptureFixture) -> None:
    # asyncio reports the garbage collection of clients earlier tests left on closed loops.
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name != "asyncio"]
    if logged:
        fail(snippet, "logged: " + "; ".join(f"{r.name}: {r.getMessage()}" for r in logged))


def visits_increase(first: str, second: str) -> bool:
    """A page counting visits in the session answers one more the second time."""
    m = re.fullmatch(r"(\d+) visits?", first.strip())
    return m is None or second.strip() == f"{int(m.group(1)) + 1} visits"


def count_visits(request: Any) -> Any:
    request.session["visits"] = request.session.get("visits", 0) + 1
    request.response.text = f"{request.session['visits']} visits"
    return request.response


def wsgi_count_visits(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    session = environ["beaker.session"]
    session["visits"] = session.get("visits", 0) + 1
    session.save()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{session['visits']} visits".encode()]


def two_requests(get: Callable[[], tuple[int, str]], where: str) -> None:
    first, second = get(), get()
    assert first[0] == 200 and second[0] == 200, f"{where}: {first[0]}, {second[0]}"
    assert visits_increase(first[1], second[1]), f"{where}: {first[1]!r} then {second[1]!r}"


def exercise_flask(app: Any) -> None:
    client = app.test_client()
    for rule in app.url_map.iter_rules():
        if rule.endpoint != "static" and not rule.arguments and "GET" in rule.methods:

            def get(path: str = rule.rule) -> tuple[int, str]:
                response = client.get(path)
                return response.status_code, response.get_data(as_text=True)

            two_requests(get, f"Flask GET {rule.rule}")


def exercise_wsgi(app: Any, path: str = "/") -> None:
    client = webtest.TestApp(app)

    def get() -> tuple[int, str]:
        response = client.get(path)
        return response.status_int, response.text

    two_requests(get, f"GET {path}")


def exercise_pyramid(config: Any) -> None:
    from pyramid.interfaces import ISessionFactory

    config.add_route("docs_visits", "/docs-visits")
    config.add_view(count_visits, route_name="docs_visits")
    app = config.make_wsgi_app()
    assert config.registry.queryUtility(ISessionFactory) is not None, "no session factory"
    exercise_wsgi(app, "/docs-visits")


def exercise_beaker_cache(cache: Any) -> None:
    caches = [cache.get_cache("docs")]
    caches += [cache.get_cache_region("docs", region) for region in cache.regions]
    for beaker_cache in caches:
        beaker_cache.put("answer", 42)
        assert beaker_cache.get("answer") == 42


def exercise_asgi(app: Any) -> None:
    """Two GET requests of ``/`` with one cookie jar on a Starlette or FastAPI app."""
    from starlette.testclient import TestClient

    if not any(getattr(route, "path", None) == "/" for route in app.routes):
        return  # a snippet about configuration, with no page to visit
    with TestClient(app, base_url="https://testserver") as client:

        def get() -> tuple[int, str]:
            response = client.get("/")
            return response.status_code, response.text

        two_requests(get, "ASGI GET /")


def exercise_litestar(app: Any) -> None:
    """Two GET requests of ``/`` with one cookie jar on a Litestar app."""
    from litestar.testing import TestClient

    if not any(route.path == "/" for route in app.routes):
        return
    with TestClient(app) as client:

        def get() -> tuple[int, str]:
            response = client.get("/")
            return response.status_code, response.text

        two_requests(get, "Litestar GET /")


def exercise_aiohttp(app: Any) -> None:
    """Two GET requests with one cookie jar on each plain GET route of an aiohttp app."""
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    infos = [(r.method, r.resource.get_info()) for r in app.router.routes() if r.resource]
    paths = [info["path"] for method, info in infos if method == "GET" and "path" in info]

    async def visit() -> dict[str, list[tuple[int, str]]]:
        answers: dict[str, list[tuple[int, str]]] = {}
        async with TestClient(TestServer(app)) as client:
            for path in paths:
                for _ in range(2):
                    response = await client.get(path)
                    answers.setdefault(path, []).append((response.status, await response.text()))
        return answers

    for path, answers in asyncio.run(visit()).items():
        replies = iter(answers)
        two_requests(lambda replies=replies: next(replies), f"aiohttp GET {path}")  # type: ignore[misc]


def exercise(namespace: dict[str, Any]) -> None:
    """Drive the web apps and caches a snippet defined."""
    import flask
    from aiohttp import web
    from beaker.cache import CacheManager
    from beaker.middleware import SessionMiddleware
    from litestar import Litestar
    from pyramid.config import Configurator
    from starlette.applications import Starlette

    for value in list(namespace.values()):
        if isinstance(value, flask.Flask):
            exercise_flask(value)
        elif isinstance(value, SessionMiddleware):
            exercise_wsgi(value)
        elif isinstance(value, Configurator):
            exercise_pyramid(value)
        elif isinstance(value, CacheManager):
            exercise_beaker_cache(value)
        elif isinstance(value, Starlette):
            exercise_asgi(value)
        elif isinstance(value, web.Application):
            exercise_aiohttp(value)
        elif isinstance(value, Litestar):
            exercise_litestar(value)


def run_python(snippet: Snippet, run: SnippetRun) -> None:
    # Padding keeps tracebacks on the page's own line numbers.
    code = "\n" * (snippet.line - 1) + run.rewrite(snippet.code)
    module = types.ModuleType("docs_snippet")  # Pyramid looks its caller's module up
    run.monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    error = None
    try:
        exec(compile(code, snippet.path, "exec"), namespace)  # the docs' own code
        exercise(namespace)
        run.check_managers()
    except Exception as exc:
        error = explain(snippet, exc)
    finally:
        for value in namespace.values():
            if isinstance(value, MongoClient):
                value.close()
    if error:
        fail(snippet, error)


@pytest.mark.parametrize("snippet", cases(PYTHON))
def test_python_snippet_runs(
    snippet: Snippet, run: SnippetRun, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    run_python(snippet, run)
    no_warnings_logged(snippet, caplog)


# -- ini blocks ------------------------------------------------------------------


def ini_settings(code: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    for line in code.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a setting: {line!r}"
        settings[key.strip()] = value.strip()
    return settings


def load_ini(settings: dict[str, str]) -> list[str]:
    """Load settings the way their framework does; return what was exercised."""
    from beaker.cache import CacheManager
    from beaker.middleware import SessionMiddleware
    from beaker.util import parse_cache_config_options
    from pyramid.config import Configurator

    loaded = []
    if "pyramid.includes" in settings or any(k.startswith("mongo_sessions.") for k in settings):
        config = Configurator(settings=settings)  # reads pyramid.includes itself
        if "pyramid.includes" not in settings:
            config.include("mongo_session_backends.pyramid")
        exercise_pyramid(config)
        loaded.append("pyramid")
    elif any(k.startswith("session.") for k in settings):
        exercise_wsgi(SessionMiddleware(wsgi_count_visits, settings))
        loaded.append("beaker session")
    if any(k.startswith("cache.") for k in settings):
        exercise_beaker_cache(CacheManager(**parse_cache_config_options(settings)))
        loaded.append("beaker cache")
    return loaded


@pytest.mark.parametrize("snippet", cases({"ini"}))
def test_ini_snippet_loads(
    snippet: Snippet, run: SnippetRun, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = ini_settings(run.rewrite(snippet.code))
    loaded: list[str] = []
    error = None
    try:
        loaded = load_ini(settings)
        run.check_managers()
    except Exception as exc:
        error = explain(snippet, exc)
    if error:
        fail(snippet, error)
    if not loaded:
        fail(snippet, "neither Beaker nor Pyramid settings")
    no_warnings_logged(snippet, caplog)


# -- the extraction itself ---------------------------------------------------------


def test_every_page_is_searched() -> None:
    pages = {s.path for s in SNIPPETS}
    assert {"README.md", "docs/quickstart.rst", "docs/deployment.rst"} <= pages
    languages = {s.language for s in SNIPPETS}
    assert {"python", "ini", "sh"} <= languages | PYTHON


def test_known_failures_name_real_blocks() -> None:
    for path, marker in KNOWN_FAILURES:
        assert any(s.path == path and marker in s.code for s in SNIPPETS), (path, marker)


def test_rst_extraction(tmp_path: Path) -> None:
    page = tmp_path / "page.rst"
    page.write_text(
        "Title\n=====\n\nText::\n\n    x = 1\n\n"
        ".. code-block:: ini\n   :caption: c\n\n   a = b\n\n"
        "* item\n\n  .. code-block:: python\n\n     y = 2\n     z = 3\n\nend\n"
    )
    found = [(s.line, s.language, s.code) for s in rst_snippets(page, "page.rst")]
    assert found == [(6, "default", "x = 1"), (11, "ini", "a = b"), (17, "python", "y = 2\nz = 3")]


def test_beaker_regions_do_not_inherit_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick start's warning, checked against Beaker's and pyramid_beaker's parsers."""
    import pyramid_beaker
    from beaker import cache as beaker_cache
    from beaker.cache import CacheManager
    from beaker.util import parse_cache_config_options

    settings = {
        "cache.type": "mongodb",
        "cache.url": "mongodb://db.example.com:27017/myapp",
        "cache.collection": "cache",
        "cache.regions": "short_term",
        "cache.short_term.expire": "60",
    }
    options = parse_cache_config_options(settings)
    region = options["cache_regions"]["short_term"]
    assert region["type"] == "mongodb" and region["expire"] == 60
    assert "url" not in region and "collection" not in region
    namespace = CacheManager(**options).get_cache_region("docs", "short_term").namespace
    assert namespace.store.uri == "mongodb://127.0.0.1:27017"  # the default, not cache.url
    assert namespace.store.collection_name == "sessions"
    # pyramid_beaker copies the url, and still none of our other options.
    monkeypatch.setattr(beaker_cache, "cache_regions", {})
    pyramid_beaker.set_cache_regions_from_settings(settings)
    region = beaker_cache.cache_regions["short_term"]
    assert region["url"] == settings["cache.url"] and "collection" not in region


def test_a_session_that_does_not_persist_is_caught() -> None:
    import flask

    app = flask.Flask("docs_check")
    app.add_url_rule("/", "index", lambda: "1 visits")
    with pytest.raises(AssertionError, match="'1 visits' then '1 visits'"):
        exercise_flask(app)
