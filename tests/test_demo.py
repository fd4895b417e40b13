"""The demo over real HTTP: two browsers at once, logout, refusals, and its server."""

from __future__ import annotations

import argparse
import html
import http.client
import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest

from mongo_session_backends import MongoManager, embedded
from mongo_session_backends.demo import (
    EMPTY_KEY,
    FRAMEWORKS,
    MAX_FORM_BYTES,
    RESERVED_KEY,
    make_app,
    make_server,
    render_page,
    run,
)
from mongo_session_backends.embedded import free_port


class Browser:
    """An HTTP client with its own cookie jar, like one browser."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def open(
        self, path: str = "", form: dict[str, str] | None = None, method: str | None = None
    ) -> tuple[int, str, Message]:
        """Request ``path`` (POST when ``form`` is given), following redirects."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with self.opener.open(request, timeout=5) as response:
                return response.status, response.read().decode(), response.headers
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read().decode(), exc.headers

    def page(self, path: str = "", form: dict[str, str] | None = None) -> str:
        status, body, _ = self.open(path, form)
        assert status == 200, body
        return body


def live(body: str) -> int:
    match = re.search(r'id="live">(\d+)<', body)
    assert match, body
    return int(match.group(1))


@pytest.fixture(params=FRAMEWORKS)
def url(request: pytest.FixtureRequest, mongodb_uri: str, database_name: str) -> Iterator[str]:
    """The demo for each framework, served in a thread on the test server."""
    manager = MongoManager(mongodb_uri, database_name=database_name)
    httpd = make_server("127.0.0.1", free_port(), make_app(request.param, manager))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        manager.close()


def test_two_browsers_are_isolated_and_logout_leaves_nothing(url: str, collection: Any) -> None:
    first, second = Browser(url), Browser(url)
    assert 'id="empty"' in first.page()
    body = first.page("set", {"key": "colour", "value": "teal"})
    assert "<td>colour</td>" in body and ">teal<" in body and live(body) == 1
    body = second.page("set", {"key": "colour", "value": "plum"})
    assert ">plum<" in body and "teal" not in body and live(body) == 2
    body = first.page()
    assert ">teal<" in body and "plum" not in body
    for browser in (first, second):
        (cookie,) = browser.jar
        assert cookie.has_nonstandard_attr("HttpOnly")
    assert collection.count_documents({}) == 2

    body = first.page("logout", {})
    assert 'id="empty"' in body and "teal" not in body and live(body) == 1
    assert collection.count_documents({}) == 1
    assert ">plum<" in second.page()
    assert live(second.page("logout", {})) == 0
    assert 'id="empty"' in first.page() and 'id="empty"' in second.page()
    assert collection.count_documents({}) == 0


def test_refusals(url: str, collection: Any) -> None:
    browser = Browser(url)
    for form in ({}, {"value": "x"}, {"key": "", "value": "x"}, {"key": "  "}):
        status, body, _ = browser.open("set", form)
        assert status == 400 and html.escape(EMPTY_KEY) in body
    status, body, _ = browser.open("set", {"key": "_accessed_time", "value": "1"})
    assert status == 400 and html.escape(RESERVED_KEY) in body
    assert collection.count_documents({}) == 0

    assert browser.open("favicon.ico")[0] == 404
    status, body, _ = browser.open("", method="HEAD")
    assert (status, body) == (200, "")
    get = {"GET", "HEAD"}
    for path, method, allowed in (("set", "GET", {"POST"}), ("logout", "GET", {"POST"}),
                                  ("", "POST", get), ("", "DELETE", get)):  # fmt: skip
        status, _, headers = browser.open(path, method=method)
        assert (status, set(headers["Allow"].split(", "))) == (405, allowed)

    # Refused from its Content-Length, before the body is read.
    connection = http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=5)
    try:
        connection.putrequest("POST", "/set")
        connection.putheader("Content-Type", "application/x-www-form-urlencoded")
        connection.putheader("Content-Length", str(MAX_FORM_BYTES + 1))
        connection.endheaders(b"key=k&value=v")
        assert connection.getresponse().status == 413
    finally:
        connection.close()


def test_page_shows_values_as_wrapped_text(url: str) -> None:
    browser = Browser(url)
    long = "x" * 100_000
    body = browser.page("set", {"key": "<b>", "value": long})
    assert f'<div class="value">{long}</div>' in body and "<td>&lt;b&gt;</td>" in body
    assert "overflow-wrap: anywhere" in body and "private window" in body


def test_idle_connection_does_not_block_another(url: str) -> None:
    port = urllib.parse.urlsplit(url).port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        # This connection sends nothing; another browser is served meanwhile.
        assert 'id="empty"' in Browser(url).page()


def test_render_page_names_hidden_keys() -> None:
    body = render_page("beaker", {"_accessed_time": 17.25, "colour": "teal"}, 3)
    assert "Not shown: beaker's own keys _accessed_time." in body
    assert ">teal<" in body and "'teal'" not in body and "17.25" not in body
    assert "Not shown" not in render_page("flask", {"colour": "teal"}, 1)


class _NoEmbeddedServer:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the embedded server was started")


@pytest.mark.parametrize(
    ("framework", "host", "port", "reason"),
    [
        ("flask", "127.0.0.1", 99999, "port 99999 is out of range"),
        ("pyramid", "127.0.0.1", 0, "port 0 is out of range"),
        ("beaker", "999.1.1.1", 8000, "cannot serve on host '999.1.1.1'"),
        ("flask", "127.0.0.1", None, "Address already in use"),
        ("django", "127.0.0.1", 8000, "unknown demo framework 'django'"),
    ],
)
def test_unusable_framework_host_or_port(
    framework: str,
    host: str,
    port: int | None,
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One line on stderr and a non-zero status, before anything starts."""
    monkeypatch.setattr(embedded, "EmbeddedServer", _NoEmbeddedServer)

    def no_manager(args: argparse.Namespace) -> MongoManager:
        raise AssertionError("a manager was made")

    with socket.socket() as busy:  # port None: this one, in use
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        args = argparse.Namespace(uri=None, database=None, collection="sessions", timeout=1.0,
                                  framework=framework, host=host,
                                  port=busy.getsockname()[1] if port is None else port)  # fmt: skip
        assert run(args, no_manager) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ") and reason in captured.err
    assert captured.err.count("\n") == 1


def test_run_starts_and_stops_the_embedded_server() -> None:
    """``run`` without a URI: the printed URL serves, SIGTERM stops everything."""
    script = (
        "import argparse, sys\n"
        "from mongo_session_backends import MongoManager\n"
        "from mongo_session_backends.demo import run\n"
        f"args = argparse.Namespace(uri=None, database='demo', collection='sessions', "
        f"timeout=5.0, framework='beaker', host='127.0.0.1', port={free_port()})\n"
        "sys.exit(run(args, lambda a: MongoManager(a.uri, database_name=a.database)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        embedded_port = re.search(r"server at mongodb://127\.0\.0\.1:(\d+)/", first)
        serving = re.search(r"^Serving the beaker demo on (http://\S+/) with sessions in ",
                            process.stdout.readline())  # fmt: skip
        assert embedded_port and serving, first
        assert 'id="empty"' in Browser(serving.group(1)).page()
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(embedded_port.group(1))), 0.5).close()
        except OSError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the embedded server is still running")
