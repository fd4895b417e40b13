"""Test fixtures: a real MongoDB wire-protocol server for every test.

``MONGODB_URI`` selects an existing server (mongod, Atlas, Cosmos);
otherwise an embedded SecantusDB server is started for the test session.
Each test gets its own database, dropped afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import MongoClient, monitoring

from mongo_session_backends import AsyncMongoManager, MongoManager
from mongo_session_backends.embedded import EmbeddedServer
from mongo_session_backends.manager import utcnow


class Clock:
    """A controllable clock: tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class CommandCounter(monitoring.CommandListener):
    """Records the commands a client sends (round trips): names and documents."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.documents: list[Any] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in ("hello", "ismaster", "endSessions"):
            self.commands.append(event.command_name)
            self.documents.append(event.command)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def reset(self) -> None:
        self.commands.clear()
        self.documents.clear()


@pytest.fixture(scope="session")
def mongodb_uri() -> Iterator[str]:
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    with EmbeddedServer() as server:
        yield server.uri


@pytest.fixture(scope="session")
def admin_client(mongodb_uri: str) -> Iterator[MongoClient[Any]]:
    client: MongoClient[Any] = MongoClient(mongodb_uri, tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def database_name(admin_client: MongoClient[Any]) -> Iterator[str]:
    name = "t_" + uuid.uuid4().hex[:12]
    yield name
    admin_client.drop_database(name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def counter() -> CommandCounter:
    return CommandCounter()


@pytest.fixture
def manager_options(
    mongodb_uri: str, database_name: str, clock: Clock, counter: CommandCounter
) -> dict[str, Any]:
    """Options for a manager on this test's database, clock and counter."""
    return {
        "uri": mongodb_uri,
        "database_name": database_name,
        "clock": clock,
        "connection_options": {"event_listeners": [counter]},
    }


@pytest.fixture
def manager(manager_options: dict[str, Any]) -> Iterator[MongoManager]:
    m = MongoManager(**manager_options)
    yield m
    m.close()


@pytest.fixture
async def async_manager(manager_options: dict[str, Any]) -> AsyncIterator[AsyncMongoManager]:
    """An :class:`AsyncMongoManager` with the same options as ``manager``."""
    m = AsyncMongoManager(**manager_options)
    yield m
    await m.aclose()


@pytest.fixture
def proxy(mongodb_uri: str) -> Iterator[Any]:
    """A fault-injecting TCP proxy in front of the test server (see tests/proxy.py)."""
    from tests.proxy import FaultProxy

    hostport = mongodb_uri.split("://", 1)[1].split("/", 1)[0].split(",")[0]
    if "@" in hostport or "MONGODB_URI" in os.environ:
        pytest.skip("the proxy needs a plain local server")
    host, port = hostport.rsplit(":", 1)
    p = FaultProxy(host, int(port))
    yield p
    p.close()


@pytest.fixture
def collection(admin_client: MongoClient[Any], database_name: str) -> Any:
    """The raw ``sessions`` collection of this test, for inspection."""
    return admin_client[database_name]["sessions"]
