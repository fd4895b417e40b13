"""The mongo-sessions command and the demo, end to end."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

from mongo_session_backends import MongoManager
from mongo_session_backends.cli import main
from mongo_session_backends.embedded import free_port


@pytest.fixture
def cli_args(mongodb_uri: str, database_name: str) -> list[str]:
    return ["--uri", mongodb_uri, "--database", database_name]


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "stats", "ensure-indexes", "purge-expired"):
        assert command in out
    for command in ("demo", "stats", "ensure-indexes", "purge-expired"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--uri" in capsys.readouterr().out


def test_ensure_indexes(
    cli_args: list[str], collection: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    collection.create_index("expires", expireAfterSeconds=99)
    assert main(["ensure-indexes", *cli_args]) == 0
    assert "expireAfterSeconds=0" in capsys.readouterr().out
    assert collection.index_information()["expires_1"]["expireAfterSeconds"] == 0
    assert main(["ensure-indexes", *cli_args]) == 0
    assert "already in place" in capsys.readouterr().out
    assert main(["ensure-indexes", "--collection", "cosmos", "--cleanup", "cosmos",
                 "--expires", "3600", *cli_args]) == 0  # fmt: skip
    info = collection.database["cosmos"].index_information()
    assert info["_ts_1"]["expireAfterSeconds"] == 3600


def test_stats_and_purge(
    manager: MongoManager, clock: Any, cli_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    manager.set("live", "x" * 1000)
    manager.set("old", 1, timeout=-5)
    assert main(["stats", "--json", *cli_args]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["live"] == 1 and stats["expired"] == 1 and stats["documents"] == 2
    assert stats["largest_size"] > 1000 and stats["index_problems"] == []
    assert "expires_1" in stats["indexes"]
    assert main(["stats", *cli_args]) == 0
    assert "live: 1" in capsys.readouterr().out
    assert main(["purge-expired", *cli_args]) == 0
    assert "deleted 1 expired" in capsys.readouterr().out


def test_stats_reports_a_missing_ttl_index(
    cli_args: list[str], collection: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    collection.insert_one({"_id": "x"})
    assert main(["stats", "--json", *cli_args]) == 0
    assert "missing index on expires" in json.loads(capsys.readouterr().out)["index_problems"]


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"mongodb://admin:hunter2@127.0.0.1:{free_port()}/"
    for command in ("stats", "ensure-indexes", "purge-expired"):
        assert main([command, "--uri", uri, "--timeout", "0.3"]) == 2
        err = capsys.readouterr().err
        assert "cannot reach MongoDB" in err and "hunter2" not in err and "admin:***@" in err


def _wait_for_url(process: subprocess.Popen[str], deadline: float) -> tuple[str, int]:
    """The demo's URL and its embedded server's port, from what it prints."""
    assert process.stdout is not None
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        match = re.search(r"(http://\S+/)", line)
        if match:
            embedded = re.search(r"server at mongodb://127.0.0.1:(\d+)", "".join(lines))
            assert embedded, lines
            return match.group(1), int(embedded.group(1))
        if process.poll() is not None:
            break
    raise AssertionError("demo did not start: " + "".join(lines))


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("framework", ["flask", "pyramid", "beaker"])
def test_demo_end_to_end(framework: str) -> None:
    """Start the demo on its embedded server and drive it over real HTTP."""
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    command = [sys.executable, "-m", "mongo_session_backends", "demo",
               "--framework", framework, "--port", str(free_port())]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        url, server_port = _wait_for_url(process, time.monotonic() + 60)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

        def page(path: str = "", form: dict[str, str] | None = None) -> str:
            data = urllib.parse.urlencode(form).encode() if form is not None else None
            with opener.open(url + path, data=data, timeout=10) as response:
                return str(response.read().decode())

        assert "empty" in page()
        body = page("set", {"key": "colour", "value": "teal"})
        assert "colour" in body and "teal" in body
        assert re.search(r'id="live">1<', body)
        assert len(jar) == 1
        other = urllib.request.build_opener()
        with other.open(url, timeout=10) as response:
            assert "teal" not in response.read().decode()
        body = page("logout", {})
        assert "teal" not in body and "empty" in body
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    deadline = time.monotonic() + 10
    while _listening(server_port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _listening(server_port), "the demo left its embedded server running"
