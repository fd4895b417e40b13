"""The async half of the benchmark: one :class:`~bench.cases.Case` per system and operation.

Every async case runs on one event loop (:class:`Loop`), in the same run,
rounds and shuffled turns as the sync cases. A case is measured either
sequentially (one operation after another) or with :data:`TASKS`
concurrent tasks sharing one client; either way its timing loop runs
inside the event loop, so no per-call loop start-up is counted.

Our :class:`~mongo_session_backends.AsyncMongoManager` is measured against
raw ``AsyncMongoClient`` calls sending the same commands; the framework
requests against their limits; the async peers (on Motor) on the
operations they share with ours. Adapters and peers that are not
installed are left out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pymongo import AsyncMongoClient, MongoClient, ReplaceOne, ReturnDocument
from pymongo.errors import DuplicateKeyError

from mongo_session_backends import AsyncMongoManager
from mongo_session_backends.codec import utcnow

from .cases import VALUE, Case, _ours, _restore_keys, batch, key

OURS_ASYNC, RAW_ASYNC = "ours async", "raw AsyncMongoClient"
PEER_AIOHTTP, PEER_QUART = "aiohttp-session-mongo", "Quart-Session mongodb"
LITESTAR_COOKIE, FASTAPI_COOKIE = "Litestar cookie session", "FastAPI cookie session"
ASYNC_PEERS = (PEER_AIOHTTP, PEER_QUART)
#: The concurrent tasks of a concurrent case.
TASKS = 64
#: Our async collection, and its large twin for the growth test.
COLLECTION, LARGE = "sessions_async", "sessions_async_large"
#: The peers' collections.
PEER_COLLECTIONS = {PEER_AIOHTTP: "aiohttp_peer", PEER_QUART: "quart_peer"}
SESSION = {"n": 1, "user_id": 12345, "cart": VALUE["cart"]}
#: The sessions the Quart-Session cases read and write, in turn.
SESSIONS = 100
T = TypeVar("T")
Op = Callable[[int], Awaitable[Any]]


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (its package is installed)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


class Loop:
    """The one event loop every async case runs on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        #: coroutine functions that close what the cases opened
        self.closing: list[Callable[[], Awaitable[Any]]] = []

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    def close(self) -> None:
        for close in self.closing:
            self.run(close())
        self.loop.close()

    def case(
        self,
        system: str,
        operation: str,
        op: Op,
        client: Any = None,
        limit: list[str] | None = None,
        tasks: int = 1,
    ) -> Case:
        """A case running ``op(i)`` one at a time, or from ``tasks`` concurrent tasks."""
        if tasks > 1:
            operation = f"{operation} ({tasks} tasks)"

        async def burst(i: int) -> list[Any]:
            return await asyncio.gather(*(op(i * tasks + t) for t in range(tasks)))

        return Case(
            system,
            operation,
            lambda i: self.run(burst(i)),
            client,
            list(limit or []),
            timer=lambda seconds, start: self.run(timed(op, seconds, start, tasks)),
            per_call=tasks,
        )


async def timed(op: Op, seconds: float, start: int, tasks: int) -> tuple[int, float]:
    """Run ``op`` from ``tasks`` tasks for about ``seconds``; return operations and time.

    Each task runs at least three operations when alone, one when
    concurrent; the time ends when the last task's operation does.
    """
    numbers = itertools.count(start)
    began = time.perf_counter()
    least = 3 if tasks == 1 else 1

    async def work() -> int:
        n = 0
        while n < least or time.perf_counter() - began < seconds:
            await op(next(numbers))
            n += 1
        return n

    done = await asyncio.gather(*(work() for _ in range(tasks)))
    return sum(done), time.perf_counter() - began


def _later() -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=300)


def _increment(now: dt.datetime) -> list[dict[str, Any]]:
    """The pipeline our ``incr`` sends: add 1 to a live integer, else start at 1."""
    live = {"$gt": ["$expires", now]}
    total = {"$add": ["$value", 1]}
    invalid = {"$add": [{"$ifNull": ["$value", 0]}, "not an integer"]}
    checked = {"$cond": [{"$in": [{"$type": total}, ["int", "long"]]}, total, invalid]}
    later = now + dt.timedelta(seconds=300)
    return [
        {
            "$set": {
                "value": {"$cond": [live, checked, 1]},
                "expires": {"$cond": [live, "$expires", later]},
                "ns": {"$literal": ""},
            }
        }
    ]


def raw_ops(client: AsyncMongoClient[Any], database: str, collection: str) -> dict[str, Op]:
    """Raw ``AsyncMongoClient`` calls sending the commands our manager sends."""
    coll = client[database][collection]
    fresh = itertools.count()

    def live(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        return doc if doc is not None and doc["expires"] > utcnow() else None

    async def get(i: int) -> Any:
        return live(await coll.find_one({"_id": key(i)}))

    async def add(i: int) -> bool:
        k = f"raw-add-{next(fresh)}"
        doc = {"_id": k, "value": VALUE, "expires": _later(), "ns": ""}
        try:
            await coll.replace_one({"_id": k, "expires": {"$lte": utcnow()}}, doc, upsert=True)
        except DuplicateKeyError:
            return False
        return True

    async def get_many(i: int) -> list[Any]:
        now = utcnow()
        docs = await coll.find({"_id": {"$in": batch(i)}}).to_list(None)
        return [d for d in docs if d["expires"] > now]

    return {
        "get": get,
        "set": lambda i: coll.replace_one({"_id": key(i)}, _ours(key(i)), upsert=True),
        "set if live": lambda i: coll.replace_one(
            {"_id": key(i), "expires": {"$gt": utcnow()}}, _ours(key(i))
        ),
        "has": get,
        "add": add,
        "delete": lambda i: coll.delete_one({"_id": key(i + 500)}),
        "touch": lambda i: coll.update_one(
            {"_id": key(i), "expires": {"$gt": utcnow()}}, {"$set": {"expires": _later()}}
        ),
        "incr": lambda i: coll.find_one_and_update(
            {"_id": "counter"},
            _increment(utcnow()),
            projection={"value": True},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        ),
        "get_many (10 keys)": get_many,
        "set_many (10 keys)": lambda i: coll.bulk_write(
            [ReplaceOne({"_id": k}, _ours(k), upsert=True) for k in batch(i)], ordered=False
        ),
    }


def our_ops(manager: AsyncMongoManager) -> dict[str, Op]:
    """The same operations through our async manager."""
    fresh = itertools.count()
    return {
        "get": lambda i: manager.get(key(i)),
        "set": lambda i: manager.set(key(i), VALUE),
        "has": lambda i: manager.has(key(i)),
        "add": lambda i: manager.add(f"add-{next(fresh)}", VALUE),
        "delete": lambda i: manager.delete(key(i + 500)),
        "touch": lambda i: manager.touch(key(i)),
        "incr": lambda i: manager.incr("counter"),
        "get_many (10 keys)": lambda i: manager.get_many(batch(i)),
        "set_many (10 keys)": lambda i: manager.set_many(dict.fromkeys(batch(i), VALUE)),
    }


#: Operations of the growth test: ``incr``'s command scans on the embedded
#: server whatever the client (the sync growth test shows it), so it is left out.
GROWING = ("get", "set", "has", "add", "delete", "touch", "get_many (10 keys)",
           "set_many (10 keys)")  # fmt: skip


def _resets(sync: MongoClient[Any], database: str, collection: str, cases: list[Case]) -> None:
    """Keep the collection steady between rounds: drop added keys, restore deleted ones."""
    coll = sync[database][collection]
    for case in cases:
        if case.operation.startswith("add"):
            prefix = "raw-add-" if case.system == RAW_ASYNC else "add-"
            case.reset = lambda prefix=prefix: coll.delete_many({"_id": {"$regex": f"^{prefix}"}})
        elif case.operation.startswith("delete"):
            case.reset = lambda: _restore_keys(coll, _ours)


def manager_cases(
    loop: Loop,
    client: AsyncMongoClient[Any],
    sync: MongoClient[Any],
    database: str,
    collection: str = COLLECTION,
    tasks: tuple[int, ...] = (1, TASKS),
) -> tuple[AsyncMongoManager, list[Case]]:
    """Raw and our cases on ``collection``, each operation run by each number of ``tasks``.

    ``sync`` is a sync client, for the untimed resets between rounds.
    """
    manager = AsyncMongoManager(
        client=client, database_name=database, collection=collection, expires=300
    )
    raw, ours = raw_ops(client, database, collection), our_ops(manager)
    cases = []
    for n in tasks:
        suffix = f" ({n} tasks)" if n > 1 else ""
        names = [*ours, "set if live"] if n == 1 else list(ours)
        cases += [loop.case(RAW_ASYNC, name, raw[name], client, tasks=n) for name in names]
        cases += [
            loop.case(OURS_ASYNC, name, op, client, [f"{RAW_ASYNC}: {name}{suffix}"], n)
            for name, op in ours.items()
        ]
    _resets(sync, database, collection, cases)
    return manager, cases


def growing(cases: list[Case]) -> list[Case]:
    """The cases of the growth test: one task, the operations of :data:`GROWING`."""
    return [c for c in cases if c.per_call == 1 and c.operation in GROWING]


# -- framework requests ---------------------------------------------------------------


def _http(loop: Loop, app: Any) -> Callable[[int], Awaitable[Any]]:
    """One GET of ``/`` on the ASGI ``app`` per call, keeping the session cookie."""
    import httpx

    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver"
    )
    loop.closing.append(client.aclose)

    async def request(i: int) -> Any:
        response = await client.get("/")
        response.raise_for_status()
        return response

    return request


def litestar_app(store: Any | None) -> Any:
    """A Litestar app whose view counts in the session: server-side on ``store``, else a cookie."""
    from litestar import Litestar, Request, get
    from litestar.middleware.session.client_side import CookieBackendConfig
    from litestar.middleware.session.server_side import ServerSideSessionConfig

    @get("/", sync_to_thread=False)
    def view(request: Request[Any, Any, Any]) -> str:
        request.session["n"] = request.session.get("n", 0) + 1
        request.session["cart"] = VALUE["cart"]
        return "ok"

    if store is None:
        config: Any = CookieBackendConfig(secret=b"bench-secret-of-32-bytes-length!")
        return Litestar([view], middleware=[config.middleware], logging_config=None)
    return Litestar(
        [view],
        middleware=[ServerSideSessionConfig().middleware],
        stores={"sessions": store},
        logging_config=None,
    )


def fastapi_app(store: Any) -> Any:
    """A FastAPI app with starsessions on ``store``, counting in the session."""
    from fastapi import FastAPI, Request
    from starsessions import SessionAutoloadMiddleware, SessionMiddleware

    app = FastAPI()

    async def view(request: Request) -> str:
        request.session["n"] = request.session.get("n", 0) + 1
        request.session["cart"] = VALUE["cart"]
        return "ok"

    view.__annotations__ = {"request": Request, "return": str}  # FastAPI reads the types
    app.get("/")(view)
    app.add_middleware(SessionAutoloadMiddleware)
    app.add_middleware(SessionMiddleware, store=store, lifetime=3600)
    return app


class RawDocuments:
    """Raw ``AsyncMongoClient`` calls a hand-written store would make: our commands, no checks.

    One ``find_one`` by ``_id`` with the expiry checked on the result, and
    one ``replace_one`` with upsert, writing our document shape under
    ``prefix`` on ``collection``.
    """

    def __init__(self, collection: Any, prefix: str) -> None:
        self.collection, self.prefix = collection, prefix

    async def read(self, key: str) -> bytes | None:
        found = await self.collection.find_one({"_id": self.prefix + key})
        return found["value"] if found is not None and found["expires"] > utcnow() else None

    async def write(self, key: str, value: bytes, seconds: int) -> None:
        _id = self.prefix + key
        expires = utcnow() + dt.timedelta(seconds=seconds)
        doc = {"_id": _id, "value": value, "expires": expires, "ns": self.prefix}
        await self.collection.replace_one({"_id": _id}, doc, upsert=True)

    async def delete(self, key: str) -> None:
        await self.collection.delete_one({"_id": self.prefix + key})


def raw_litestar_store(documents: RawDocuments) -> Any:
    """A Litestar store on :class:`RawDocuments`: the least a MongoDB store can do."""
    from litestar.stores.base import Store

    class RawStore(Store):
        async def set(self, key: str, value: Any, expires_in: Any = None) -> None:
            value = value.encode() if isinstance(value, str) else value
            await documents.write(key, value, int(expires_in or 3600))

        async def get(self, key: str, renew_for: Any = None) -> bytes | None:
            return await documents.read(key)

        async def delete(self, key: str) -> None:
            await documents.delete(key)

        async def delete_all(self) -> None:
            raise NotImplementedError

        async def exists(self, key: str) -> bool:
            return await documents.read(key) is not None

        async def expires_in(self, key: str) -> int | None:
            raise NotImplementedError

    return RawStore()


def raw_starlette_store(documents: RawDocuments) -> Any:
    """A starsessions store on :class:`RawDocuments`: the least a MongoDB store can do."""
    from starsessions import SessionStore

    class RawStore(SessionStore):
        async def read(self, session_id: str, lifetime: int) -> bytes:
            return await documents.read(session_id) or b""

        async def write(self, session_id: str, data: bytes, lifetime: int, ttl: int) -> str:
            await documents.write(session_id, data, ttl or 3600)
            return session_id

        async def remove(self, session_id: str) -> None:
            await documents.delete(session_id)

    return RawStore()


def request_cases(loop: Loop, manager: AsyncMongoManager, client: Any) -> list[Case]:
    """A request with a server-side session on our store, for each framework installed.

    The limit of a request is one raw find, one raw write and the same
    request with the framework's cookie-only session, their times added.
    Beside it, the same request on a hand-written store of raw
    ``AsyncMongoClient`` calls on the same collection (the ``(raw store)``
    rows): the framework's own server-side session work included.
    """
    cases = []
    collection = client[manager.database_name][manager.collection_name]
    if installed("litestar") and installed("mongo_session_backends.litestar"):
        from mongo_session_backends.litestar import MongoDBStore as LitestarStore

        raw = raw_litestar_store(RawDocuments(collection, "raw-litestar:"))
        cases += _request_pair(
            loop, "litestar", LITESTAR_COOKIE, litestar_app(None),
            litestar_app(LitestarStore(manager=manager)), litestar_app(raw), client,
        )  # fmt: skip
    if installed("fastapi") and installed("mongo_session_backends.starlette"):
        from starsessions import CookieStore

        from mongo_session_backends.starlette import MongoDBStore as StarletteStore

        raw = raw_starlette_store(RawDocuments(collection, "raw-starlette:"))
        cases += _request_pair(
            loop, "fastapi", FASTAPI_COOKIE, fastapi_app(CookieStore("bench-secret")),
            fastapi_app(StarletteStore(manager=manager)), fastapi_app(raw), client,
        )  # fmt: skip
    return cases


def _request_pair(
    loop: Loop, name: str, cookie_system: str, cookie_app: Any, app: Any, raw_app: Any,
    client: Any,
) -> list[Case]:  # fmt: skip
    limit = [f"{RAW_ASYNC}: get", f"{RAW_ASYNC}: set", f"{cookie_system}: request"]
    return [
        loop.case(cookie_system, "request", _http(loop, cookie_app)),
        loop.case(OURS_ASYNC, f"{name} request", _http(loop, app), client, limit),
        loop.case(RAW_ASYNC, f"{name} request (raw store)", _http(loop, raw_app), client),
    ]


# -- the async peers --------------------------------------------------------------------


@dataclass
class Storage:
    """An aiohttp-session storage with one stored session, loaded and saved by the cases."""

    storage: Any
    request: Any = None
    session: Any = None

    async def start(self) -> None:
        """Store one session and keep a request carrying its cookie."""
        from aiohttp import web
        from aiohttp.test_utils import make_mocked_request

        name = self.storage.cookie_name
        session = await self.storage.load_session(make_mocked_request("GET", "/"))
        session.update(SESSION)
        response = web.Response()
        await self.storage.save_session(make_mocked_request("GET", "/"), response, session)
        cookie = response.cookies[name].value
        self.request = make_mocked_request("GET", "/", headers={"Cookie": f"{name}={cookie}"})
        self.session = await self.storage.load_session(self.request)

    async def load(self, i: int) -> Any:
        return await self.storage.load_session(self.request)

    async def save(self, i: int) -> Any:
        from aiohttp import web

        self.session["n"] = i
        await self.storage.save_session(self.request, web.Response(), self.session)


def _aiohttp_cases(loop: Loop, system: str, storage: Any, client: Any) -> list[Case]:
    wrapped = Storage(storage)
    loop.run(wrapped.start())
    return [
        loop.case(system, "aiohttp load_session", wrapped.load, client),
        loop.case(system, "aiohttp save_session", wrapped.save, client),
    ]


@dataclass
class Peers:
    """The async peers that are installed, on Motor clients of their own."""

    cases: list[Case]
    clients: list[Any]

    def close(self) -> None:
        for client in self.clients:
            client.close()


def motor_client(loop: Loop, uri: str, options: dict[str, Any], listeners: list[Any]) -> Any:
    """A Motor client made inside the benchmark's loop."""
    from motor.motor_asyncio import AsyncIOMotorClient

    async def make() -> Any:
        return AsyncIOMotorClient(uri, event_listeners=listeners, **options)

    return loop.run(make())


def peer_cases(
    loop: Loop,
    uri: str,
    database: str,
    options: dict[str, Any],
    listeners: list[Any],
    manager: AsyncMongoManager,
    client: AsyncMongoClient[Any],
) -> Peers:
    """The peers' cases and ours on the same operations.

    ``uri`` names the server without a database; ``manager`` is ours, on
    ``client``, for the operations a peer shares with our manager rather
    than an adapter.
    """
    cases: list[Case] = []
    clients: list[Any] = []
    if installed("aiohttp_session_mongo") and installed("motor"):
        from aiohttp_session_mongo import MongoStorage

        motor = motor_client(loop, uri, options, listeners)
        clients.append(motor)
        peer = MongoStorage(motor[database][PEER_COLLECTIONS[PEER_AIOHTTP]], max_age=3600)
        cases += _aiohttp_cases(loop, PEER_AIOHTTP, peer, motor)
        if installed("mongo_session_backends.aiohttp"):
            from mongo_session_backends.aiohttp import MongoDBStorage

            ours = _aiohttp_cases(loop, OURS_ASYNC, MongoDBStorage(manager=manager), client)
            cases += ours
    if installed("quart_session") and installed("motor"):
        cases += _quart_cases(loop, uri, database, options, listeners, manager, client, clients)
    return Peers(cases, clients)


def _quart_cases(
    loop: Loop,
    uri: str,
    database: str,
    options: dict[str, Any],
    listeners: list[Any],
    manager: AsyncMongoManager,
    client: AsyncMongoClient[Any],
    clients: list[Any],
) -> list[Case]:
    """Quart-Session's MongoDB interface (get and set; it has no delete) and our manager."""
    from quart_session.sessions import MongoDBSessionInterface

    async def make() -> Any:
        return MongoDBSessionInterface(
            mongodb_uri=f"{uri}/{database}",
            collection=PEER_COLLECTIONS[PEER_QUART],
            client_kwargs={"event_listeners": listeners, **options},
            key_prefix="session:",
        )

    interface = loop.run(make())
    clients.append(interface._client)
    sids = [f"session:{uuid.UUID(int=n)}" for n in range(SESSIONS)]

    async def store() -> None:
        await asyncio.gather(*(interface.set(key=sid, value=SESSION) for sid in sids))

    loop.run(store())
    peer_ops: dict[str, Op] = {
        "session get": lambda i: interface.get(key=sids[i % SESSIONS], app=None),
        "session set": lambda i: interface.set(key=sids[i % SESSIONS], value=SESSION),
    }
    ours = manager.with_prefix("session:")
    our_ops: dict[str, Op] = {
        "session get": lambda i: ours.get(sids[i % SESSIONS][8:]),
        "session set": lambda i: ours.set(sids[i % SESSIONS][8:], SESSION),
    }
    loop.run(ours.set_many({sid[8:]: SESSION for sid in sids}))
    cases = [loop.case(PEER_QUART, n, op, interface._client) for n, op in peer_ops.items()]
    cases += [loop.case(OURS_ASYNC, n, op, client) for n, op in our_ops.items()]
    return cases


def fill_peers(sync: MongoClient[Any], database: str, total: int) -> None:
    """Grow each async peer's collection to ``total`` live documents, in its own shape.

    The fill documents' ids start with ``fill`` (the peers' own ids are
    bytes or UUIDs), so :func:`empty_peers` removes them alone.
    """
    db = sync[database]
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    shapes: dict[str, Callable[[int], dict[str, Any]]] = {
        PEER_COLLECTIONS[PEER_AIOHTTP]: lambda n: {
            "_id": f"fill{n}",
            "data": {"session": SESSION},
            "expire": later,
        },
        PEER_COLLECTIONS[PEER_QUART]: lambda n: {"_id": f"fill{n}", "data": SESSION},
    }
    for name, shape in shapes.items():
        have = db[name].count_documents({"_id": {"$regex": "^fill"}})
        if total > have:
            db[name].insert_many([shape(n) for n in range(have, total)], ordered=False)


def empty_peers(sync: MongoClient[Any], database: str) -> None:
    """Remove the fill documents from the async peers' collections; their sessions stay."""
    for name in PEER_COLLECTIONS.values():
        sync[database][name].delete_many({"_id": {"$regex": "^fill"}})
