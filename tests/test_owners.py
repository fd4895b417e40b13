"""Log out everywhere: sessions indexed by their owner, listed and revoked in one command."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from mongo_session_backends import AsyncMongoManager, ConfigurationError, MongoManager, generate_key

SECRET = "an-id-secret-of-enough-length"


@pytest.fixture
def owned(manager_options: dict[str, Any]) -> MongoManager:
    return MongoManager(owner_key="_user_id", **manager_options)


def test_owner_is_stored_with_the_write(owned: MongoManager, collection: Any, counter: Any) -> None:
    owned.set("warm", {})
    counter.reset()
    assert owned.set("s1", {"_user_id": "ada", "cart": [1]}, 60)
    assert counter.commands == ["update"]  # one command, owner included
    doc = collection.find_one({"_id": "s1"})
    assert doc["user"] == "ada" and len(doc["handle"]) == 32 and "s1" not in doc["handle"]
    assert doc["created"] == doc["written"]
    assert owned.get("s1") == {"_user_id": "ada", "cart": [1]}
    owned.set("anon", {"cart": []})
    assert "user" not in collection.find_one({"_id": "anon"})
    assert "user_1" in collection.index_information()


def test_list_and_revoke(owned: MongoManager, clock: Any, counter: Any) -> None:
    for sid in ("a", "b", "c"):
        owned.set(sid, {"_user_id": "ada"}, 60)
    owned.set("other", {"_user_id": "bob"}, 60)
    counter.reset()
    listed = owned.sessions("ada")
    assert counter.commands == ["find"] and len(listed) == 3
    assert {"handle", "created", "written", "expires"} <= set(listed[0])
    counter.reset()
    assert owned.revoke("ada", keep="a") == 2
    assert counter.commands == ["update"]
    assert owned.get("a") is not None and owned.get("b") is None and owned.get("c") is None
    assert owned.get("other") is not None
    assert [s["handle"] for s in owned.sessions("ada")] == [listed[0]["handle"]]
    assert owned.revoke_handle("ada", listed[0]["handle"])
    assert owned.get("a") is None and owned.sessions("ada") == []


def test_revocation_sticks_against_a_late_write(owned: MongoManager) -> None:
    owned.set("s", {"_user_id": "ada", "n": 1}, 60)
    loaded = owned.get("s")  # a request in flight has read its session ...
    owned.revoke("ada")  # ... the user logs out everywhere ...
    loaded["n"] = 2
    assert owned.set("s", loaded, 60) is False  # ... and its save does not bring it back
    assert owned.get("s") is None
    assert not owned.has("s") and owned.add("s", {"_user_id": "eve"}) is False
    assert owned.set("s", loaded, 60, only_if_live=True) is False


def test_owner_changes_move_the_session(owned: MongoManager) -> None:
    owned.set("s", {"_user_id": "ada"}, 60)
    owned.set("s", {}, 60)  # logout
    assert owned.sessions("ada") == []
    owned.set("s", {"_user_id": "bob"}, 60)  # login as another user
    assert len(owned.sessions("bob")) == 1 and owned.sessions("ada") == []


class Identity:
    """A serializer that stores values as they are, ``$``-prefixed names and all."""

    def dumps(self, value: Any) -> Any:
        return value

    def loads(self, data: Any) -> Any:
        return data


def test_created_is_kept_and_written_moves(
    manager_options: dict[str, Any], clock: Any, collection: Any
) -> None:
    owned = MongoManager(owner_key="_user_id", serializer=Identity(), **manager_options)
    owned.set("anon", {"cart": []}, 60)  # an anonymous session ...
    clock.advance(5)
    owned.set("anon", {"_user_id": "ada"}, 60)  # ... logs in: created is the login
    first = collection.find_one({"_id": "anon"})
    assert first["created"] == first["written"]
    clock.advance(5)
    value = {"_user_id": "ada", "q": {"$gt": 1, "a.b": [{"$in": "x"}]}}
    assert owned.set("anon", value, 60)  # names MongoDB treats specially, nested
    doc = collection.find_one({"_id": "anon"})
    assert doc["created"] == first["created"] and doc["written"] > first["written"]
    assert owned.get("anon") == value
    [listed] = owned.sessions("ada")
    assert listed["created"] == first["created"] and listed["written"] == doc["written"]


def test_hashed_owners(manager_options: dict[str, Any], collection: Any) -> None:
    m = MongoManager(
        owner_key="uid",
        hash_ids=True,
        id_secret=SECRET,
        encryption_keys=[generate_key()],  # so the session data does not show it either
        **manager_options,
    )
    m.set("s", {"uid": "ada@example.com"}, 60)
    raw = str(list(collection.find()))
    assert "ada@example.com" not in raw
    assert len(m.sessions("ada@example.com")) == 1
    assert m.revoke("ada@example.com") == 1 and m.get("s") is None


def test_opaque_values_keep_their_owner(owned: MongoManager, collection: Any) -> None:
    owned.set("s", b"framework-encoded", 60)
    assert owned.set_owner("s", "ada")
    owned.set("s", b"framework-encoded, changed", 60)
    assert collection.find_one({"_id": "s"})["user"] == "ada"
    assert owned.revoke("ada") == 1
    assert owned.set("s", b"late write", 60) is False and owned.get("s") is None


def test_prefixes_keep_owners_apart(owned: MongoManager) -> None:
    app1, app2 = owned.with_prefix("app1:"), owned.with_prefix("app2:")
    app1.set("s", {"_user_id": "ada"}, 60)
    app2.set("s", {"_user_id": "ada"}, 60)
    assert app1.revoke("ada") == 1 and app2.get("s") is not None


@pytest.mark.slow
def test_no_revoked_session_is_ever_read_again(owned: MongoManager) -> None:
    revoked: set[str] = set()
    lock = threading.Lock()
    stop = time.monotonic() + 3
    errors: list[str] = []

    def writer(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            sid = f"w{i}-{n % 20}"
            value = owned.get(sid) or {"_user_id": f"u{n % 5}", "n": 0}
            value["n"] += 1
            owned.set(sid, value, 60)
            with lock:
                if sid in revoked and owned.get(sid) is not None:
                    errors.append(sid)
            n += 1

    def revoker() -> None:
        n = 0
        sids = [f"w{i}-{k}" for i in range(8) for k in range(20)]
        while time.monotonic() < stop:
            user = f"u{n % 5}"
            with lock:
                mine = [sid for sid in sids if (owned.get(sid) or {}).get("_user_id") == user]
                owned.revoke(user)
                revoked.update(mine)
            n += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    threads.append(threading.Thread(target=revoker))
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:5]


async def test_async_manager_revokes_too(manager_options: dict[str, Any]) -> None:
    m = AsyncMongoManager(owner_key="_user_id", **manager_options)
    await m.set("s1", {"_user_id": "ada"}, 60)
    await m.set("s2", {"_user_id": "ada"}, 60)
    assert len(await m.sessions("ada")) == 2
    assert await m.revoke("ada", keep="s1") == 1
    assert await m.get("s2") is None and await m.get("s1") is not None
    await m.aclose()


async def test_aiohttp_sessions_carry_their_owner(
    manager_options: dict[str, Any], aiohttp_client: Any
) -> None:
    from aiohttp import web
    from aiohttp_session import get_session, setup

    from mongo_session_backends.aiohttp import MongoDBStorage

    manager = AsyncMongoManager(owner_key="user", **manager_options)

    async def login(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["user"] = "ada"
        return web.Response(text="ok")

    async def whoami(request: web.Request) -> web.Response:
        return web.Response(text=str((await get_session(request)).get("user", "anonymous")))

    app = web.Application()
    setup(app, MongoDBStorage(manager))
    app.router.add_get("/login", login)
    app.router.add_get("/", whoami)
    clients = [await aiohttp_client(app) for _ in range(3)]
    for client in clients:
        await client.get("/login")
    assert len(await manager.sessions("ada")) == 3
    assert await manager.revoke("ada") == 3
    for client in clients:
        assert await (await client.get("/")).text() == "anonymous"
    await manager.aclose()


async def test_litestar_and_starsessions_sessions_tagged_at_login(
    manager_options: dict[str, Any],
) -> None:
    from mongo_session_backends.litestar import MongoDBStore as LitestarStore
    from mongo_session_backends.starlette import MongoDBStore as StarStore

    manager = AsyncMongoManager(owner_key="user", **manager_options)
    litestar, star = LitestarStore(manager), StarStore(manager)
    # The frameworks' default serializers write JSON: the owner is read from it.
    await litestar.set("sid", b'{"user": "ada", "cart": []}', 60)
    sid = await star.write("new", b'{"user": "ada", "__metadata__": {}}', 60, 60)
    # Another serializer: tag the session at login; later writes keep the owner.
    await litestar.set("opaque", b"msgpack bytes", 60)
    assert await litestar.manager.set_owner("opaque", "ada")
    await litestar.set("opaque", b"msgpack bytes, changed", 60)
    assert len(await manager.sessions("ada")) == 3
    assert await manager.revoke("ada") == 3
    await litestar.set("sid", b'{"user": "ada", "cart": [1]}', 60)  # a request in flight
    assert await litestar.get("sid") is None and await star.read(sid, 60) == b""
    plain = AsyncMongoManager(**manager_options)
    with pytest.raises(ConfigurationError, match="owner_key"):
        await plain.set_owner("sid", "ada")
    await manager.aclose()


def test_stats_count_revoked_sessions_apart(owned: MongoManager) -> None:
    for sid in ("a", "b", "c"):
        owned.set(sid, {"_user_id": "ada"}, 60)
    owned.set("anon", {}, 60)
    assert owned.revoke("ada", keep="a") == 2
    stats = owned.stats()
    assert (stats["live"], stats["revoked"], stats["expired"], stats["documents"]) == (2, 2, 0, 4)


@pytest.mark.xfail(
    strict=True,
    reason="known gap (docs/owners.rst): a write without an owner replaces the revoked "
    "marker; the adapters give a revoked browser a new id (Litestar with SessionConfig), "
    "Litestar's own ServerSideSessionConfig does not",
)
def test_an_anonymous_write_in_between_does_not_unlock_a_late_write(owned: MongoManager) -> None:
    owned.set("s", {"_user_id": "ada", "n": 1}, 60)
    loaded = owned.get("s")  # a slow request in flight
    owned.revoke("ada")
    owned.set("s", {}, 60)  # the same browser's next request: an anonymous session, same id
    owned.set("s", loaded, 60)  # the slow request saves
    assert owned.get("s") != loaded


def test_an_opaque_write_never_replaces_a_revoked_marker(owned: MongoManager) -> None:
    # Beaker's sessions reach the manager encoded: their writes keep the stored owner.
    owned.set("b", {"_user_id": "ada"}, 60)
    owned.revoke("ada")
    assert owned.set("b", "an encoded anonymous session", 60) is False
    assert owned.set("b", {"_user_id": "ada"}, 60) is False and owned.get("b") is None


def test_sessions_can_leave_the_current_one_out(owned: MongoManager, counter: Any) -> None:
    for sid in ("a", "b", "c"):
        owned.set(sid, {"_user_id": "ada"}, 60)
    counter.reset()
    others = owned.sessions("ada", keep="a")
    assert counter.commands == ["find"]
    assert len(others) == 2 and owned.handle_of("a") not in {s["handle"] for s in others}
    assert len(owned.sessions("ada", keep="not-a-session")) == 3
