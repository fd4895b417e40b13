"""Faults through the async manager: server kill and restart, network faults, outages.

Slow; ``.ci/run`` runs them with the other fault tests.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from mongo_session_backends import AsyncMongoManager, ServerUnavailable
from mongo_session_backends.embedded import EmbeddedServer, free_port

from .proxy import FaultProxy

FAST_FAIL = {"timeoutMS": 1500, "serverSelectionTimeoutMS": 1000, "connectTimeoutMS": 1000}
BOUND = 4.0  # seconds an operation may take to fail during an outage


async def timed(coroutine: Any) -> tuple[float, Any]:
    started = time.monotonic()
    try:
        result: Any = await coroutine
    except Exception as exc:
        result = exc
    return time.monotonic() - started, result


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["stall", "blackhole", "reset"])
async def test_network_faults(proxy: FaultProxy, database_name: str, mode: str) -> None:
    m = AsyncMongoManager(proxy.uri, database_name=database_name, connection_options=FAST_FAIL)
    await m.set("before", 1)
    proxy.set_mode(mode)
    results = await asyncio.gather(*(timed(m.set(f"during-{i}", 1)) for i in range(16)))
    for elapsed, result in results:
        assert elapsed < BOUND, elapsed
        assert isinstance(result, ServerUnavailable), repr(result)  # never a false success
    proxy.set_mode("pass")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # recovers by itself, same manager
        try:
            assert await m.get("before") == 1
            break
        except ServerUnavailable:
            await asyncio.sleep(0.2)
    assert await m.set("after", 2) and await m.get("after") == 2
    await m.aclose()


@pytest.mark.slow
async def test_kill_and_restart_loses_no_acknowledged_write(tmp_path: Any) -> None:
    if "MONGODB_URI" in os.environ:
        pytest.skip("needs a server this test can kill")
    port = free_port()
    server = EmbeddedServer(port=port, data_dir=str(tmp_path / "data")).start()
    options = {**FAST_FAIL, "journal": True}
    m = AsyncMongoManager(server.uri, database_name="restart", connection_options=options)
    acknowledged: list[str] = []
    errors: list[BaseException] = []
    stop = asyncio.Event()

    async def writer(i: int) -> None:
        n = 0
        while not stop.is_set():
            key = f"w{i}-{n}"
            elapsed, result = await timed(m.set(key, {"n": n}, 0))
            if result is True:
                acknowledged.append(key)
            else:
                assert elapsed < BOUND, elapsed
                assert isinstance(result, ServerUnavailable), repr(result)
                errors.append(result)
                await asyncio.sleep(0.05)
            n += 1

    tasks = [asyncio.create_task(writer(i)) for i in range(8)]
    try:
        await asyncio.sleep(1.5)
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(2)
        server = await asyncio.to_thread(
            EmbeddedServer(port=port, data_dir=str(tmp_path / "data")).start
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            before = len(acknowledged)
            await asyncio.sleep(1)
            if len(acknowledged) > before:
                break  # traffic resumed without recreating the manager
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        assert errors, "the outage was not observed"
        values = await m.get_many(acknowledged)
        missing = [k for k, v in zip(acknowledged, values, strict=True) if v is None]
        assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged writes lost"
    finally:
        stop.set()
        await m.aclose()
        server.stop()


async def test_first_use_during_an_outage_is_bounded_for_every_task() -> None:
    m = AsyncMongoManager(
        f"mongodb://127.0.0.1:{free_port()}/x",
        connection_options={"serverSelectionTimeoutMS": 1000, "connectTimeoutMS": 1000},
    )
    results = await asyncio.gather(*(timed(m.get("k")) for _ in range(32)))
    assert all(isinstance(r, ServerUnavailable) for _, r in results)
    assert max(elapsed for elapsed, _ in results) < 2.5
