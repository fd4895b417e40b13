"""What the benchmark measures: one :class:`Case` per system and operation.

Every system runs on the same server, with the same client options, keys
and values. Each case is a callable taking a counter ``i``.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bson import Binary
from pymongo import MongoClient, ReplaceOne, ReturnDocument
from pymongo.errors import DuplicateKeyError

from mongo_session_backends import MongoManager
from mongo_session_backends.beaker import MongoNamespaceManager
from mongo_session_backends.cachelib import MongoDBCache
from mongo_session_backends.manager import utcnow

KEYS = 1000
VALUE = {
    "user_id": 12345,
    "name": "alice",
    "roles": ["admin", "dev"],
    "csrf": "c" * 40,
    "cart": [{"sku": n, "qty": 1} for n in range(5)],
}
OURS, RAW = "ours", "raw pymongo"
PEER_CACHELIB, PEER_BEAKER, PEER_FLASK = (
    "cachelib MongoDbCache",
    "Beaker ext:mongodb",
    "Flask-Session mongodb",
)
PEERS = (PEER_CACHELIB, PEER_BEAKER, PEER_FLASK)


@dataclass
class Case:
    """One measured operation of one system."""

    system: str
    operation: str
    run: Callable[[int], Any]
    #: the client whose commands are counted for this case
    client: Any = None
    #: cases whose summed time per operation is this case's ceiling
    limit: list[str] = field(default_factory=list)
    #: run after each round, untimed, to keep the collection's size steady
    reset: Callable[[], Any] | None = None
    #: measures the case instead of calling ``run`` in a loop: given the
    #: seconds and the first counter, returns the operations done and the time
    timer: Callable[[float, int], tuple[int, float]] | None = None
    #: the operations one call of ``run`` performs
    per_call: int = 1

    @property
    def name(self) -> str:
        return f"{self.system}: {self.operation}"


def key(i: int) -> str:
    return f"k{i % KEYS}"


def batch(i: int) -> list[str]:
    """Ten keys for the ``get_many`` and ``set_many`` cases."""
    return [key(i * 10 + n) for n in range(10)]


def _restore_keys(coll: Any, shape: Callable[[str], dict[str, Any]], field: str = "_id") -> None:
    """Put every key back, so each round of delete cases deletes live entries."""
    docs = [shape(key(n)) for n in range(KEYS)]
    coll.bulk_write([ReplaceOne({field: doc[field]}, doc, upsert=True) for doc in docs])


def _ours(k: str) -> dict[str, Any]:
    return {"_id": k, "value": VALUE, "expires": utcnow() + dt.timedelta(seconds=300), "ns": ""}


def _increment() -> list[dict[str, Any]]:
    """Add 1, or start again at 1 when expired: the update ``incr`` sends."""
    now = utcnow()
    live = {"$gt": ["$expires", now]}
    later = now + dt.timedelta(seconds=300)
    value = {"$cond": [live, {"$add": ["$value", 1]}, 1]}
    return [{"$set": {"value": value, "expires": {"$cond": [live, "$expires", later]}, "ns": ""}}]


def raw_cases(client: MongoClient[Any], database: str, collection: str = "sessions") -> list[Case]:
    """Raw pymongo on our collection: the ceiling of each operation."""
    coll = client[database][collection]
    fresh = itertools.count()

    def later() -> dt.datetime:
        return utcnow() + dt.timedelta(seconds=300)

    def add(i: int) -> bool:
        try:
            coll.update_one(
                {"_id": f"raw-add-{next(fresh)}", "expires": {"$lte": utcnow()}},
                {"$set": {"value": VALUE, "expires": later(), "ns": ""}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    def live(doc: dict[str, Any] | None, now: dt.datetime) -> dict[str, Any] | None:
        return doc if doc is not None and doc["expires"] > now else None

    ops: dict[str, Callable[[int], Any]] = {
        # Reads look up the id alone and check the expiry in the client.
        "get": lambda i: live(coll.find_one({"_id": key(i)}), utcnow()),
        "get (expiry in the query)": lambda i: coll.find_one(
            {"_id": key(i), "expires": {"$gt": utcnow()}}
        ),
        "set": lambda i: coll.update_one(
            {"_id": key(i)}, {"$set": {"value": VALUE, "expires": later(), "ns": ""}}, upsert=True
        ),
        "set if live": lambda i: coll.replace_one(
            {"_id": key(i), "expires": {"$gt": utcnow()}},
            {"value": VALUE, "expires": later(), "ns": ""},
        ),
        "has": lambda i: live(coll.find_one({"_id": key(i)}, {"expires": 1}), utcnow()),
        "add": add,
        "delete": lambda i: coll.delete_one({"_id": key(i + 500)}),
        "touch": lambda i: coll.update_one(
            {"_id": key(i), "expires": {"$gt": utcnow()}}, {"$set": {"expires": later()}}
        ),
        # The same counters as ours: a scan's cost depends on where the document lies.
        "inc": lambda i: coll.find_one_and_update(
            {"_id": "counter"},
            _increment(),
            projection={"value": True},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        ),
        "inc (update + find)": lambda i: (
            coll.update_one({"_id": "counter2"}, _increment(), upsert=True),
            coll.find_one({"_id": "counter2"}, {"value": True}),
        ),
        "get_many (10 keys)": lambda i: [
            doc for doc in coll.find({"_id": {"$in": batch(i)}}) if doc["expires"] > utcnow()
        ],
        "set_many (10 keys)": lambda i: coll.bulk_write(
            [ReplaceOne({"_id": k}, _ours(k), upsert=True) for k in batch(i)], ordered=False
        ),
    }
    cases = [Case(RAW, name, fn, client) for name, fn in ops.items()]
    by_name = {case.operation: case for case in cases}
    by_name["add"].reset = lambda: coll.delete_many({"_id": {"$regex": "^raw-add-"}})
    by_name["delete"].reset = lambda: _restore_keys(coll, _ours)
    return cases


def _cache_ops(cache: Any) -> dict[str, Callable[[int], Any]]:
    """The operations every cachelib cache has."""
    fresh = itertools.count()
    return {
        "get": lambda i: cache.get(key(i)),
        "set": lambda i: cache.set(key(i), VALUE),
        "has": lambda i: cache.has(key(i)),
        "add": lambda i: cache.add(f"add-{next(fresh)}", VALUE),
        "delete": lambda i: cache.delete(key(i + 500)),
        "inc": lambda i: cache.inc("counter"),
        "get_many (10 keys)": lambda i: cache.get_many(*batch(i)),
        "set_many (10 keys)": lambda i: cache.set_many(dict.fromkeys(batch(i), VALUE)),
    }


def our_cache_cases(manager: MongoManager, client: MongoClient[Any]) -> list[Case]:
    cache = MongoDBCache(manager=manager)
    two_step = MongoDBCache(manager=manager.with_prefix(""))
    two_step.manager.incr_mode = "update_and_read"
    ops = _cache_ops(cache)
    ops["touch"] = lambda i: cache.touch(key(i))
    ops["inc (update + find)"] = lambda i: two_step.inc("counter2")
    cases = [Case(OURS, name, fn, client, [f"{RAW}: {name}"]) for name, fn in ops.items()]
    coll = manager.client[manager.database_name][manager.collection_name]
    cases[3].reset = lambda: coll.delete_many({"_id": {"$regex": "^add-"}})
    cases[4].reset = lambda: _restore_keys(coll, _ours)
    return cases


def peer_cachelib_cases(client: MongoClient[Any], database: str) -> list[Case]:
    from cachelib.mongodb import MongoDbCache

    cache = MongoDbCache(client=client, db=database, collection="cachelib_peer")
    cases = [Case(PEER_CACHELIB, name, fn, client) for name, fn in _cache_ops(cache).items()]
    cases[3].reset = lambda: cache.client.delete_many({"id": {"$regex": "^add-"}})
    expires = utcnow() + dt.timedelta(days=1)
    peer_value = cache.serializer.dumps(VALUE)
    cases[4].reset = lambda: _restore_keys(
        cache.client, lambda k: {"id": k, "val": peer_value, "expiration": expires}, "id"
    )
    return cases


def _beaker_get(ns: Any, i: int) -> Any:
    try:
        return ns[key(i)]
    except KeyError:
        return None


def _beaker_set(ns: Any, i: int) -> Any:
    return ns.set_value(key(i), VALUE, 300)


def _beaker_has(ns: Any, i: int) -> bool:
    return key(i) in ns


def _beaker_delete(ns: Any, i: int) -> None:
    try:
        del ns[key(i + 500)]
    except KeyError:  # ours reports a missing key, as Beaker's memory backend does
        pass


def beaker_cases(
    manager: MongoManager, client: MongoClient[Any], peer_client: MongoClient[Any]
) -> list[Case]:
    """Namespace get, set, has and delete; ``peer_client`` names the database."""
    from beaker.ext.mongodb import MongoNamespaceManager as PeerNamespace

    ours = MongoNamespaceManager("bench", manager=manager)
    peer = PeerNamespace("bench", peer_client)
    peer_value = Binary(pickle.dumps(VALUE))  # the peer's own format
    restore = {
        OURS: lambda: ours.store.set_many({key(n): VALUE for n in range(KEYS)}, 300),
        PEER_BEAKER: lambda: _restore_keys(
            peer.db.backer_cache,
            lambda k: {"_id": f"bench:{k}", "value": peer_value, "expiration": None},
        ),
    }
    operations = {"get": _beaker_get, "set": _beaker_set, "has": _beaker_has,
                  "delete": _beaker_delete}  # fmt: skip
    cases = []
    for system, ns, counted in ((OURS, ours, client), (PEER_BEAKER, peer, peer_client)):
        for name, op in operations.items():
            case = Case(system, f"beaker {name}", functools.partial(op, ns), counted)
            if system == OURS:
                case.limit = [f"{RAW}: {name}"]
            if name == "delete":
                case.reset = restore[system]
            cases.append(case)
    return cases


def _flask_client(session_type: str, **config: Any) -> Any:
    import flask

    app = flask.Flask(f"bench_{session_type}")
    app.config.update(SECRET_KEY="bench", **config)
    if session_type != "cookie":
        from flask_session import Session

        app.config["SESSION_TYPE"] = session_type
        Session(app)

    @app.get("/")
    def view() -> str:
        flask.session["n"] = flask.session.get("n", 0) + 1
        flask.session["cart"] = VALUE["cart"]
        return "ok"

    test_client = app.test_client()
    return lambda i: test_client.get("/")


def flask_cases(manager: MongoManager, client: MongoClient[Any], database: str) -> list[Case]:
    ours = _flask_client("cachelib", SESSION_CACHELIB=MongoDBCache(manager=manager))
    peer = _flask_client(
        "mongodb", SESSION_MONGODB=client, SESSION_MONGODB_DB=database,
        SESSION_MONGODB_COLLECT="flask_peer",
    )  # fmt: skip
    cookie = _flask_client("cookie")
    limit = [f"{RAW}: get", f"{RAW}: set", "Flask cookie session: request"]
    return [
        Case("Flask cookie session", "request", cookie),
        Case(OURS, "flask request", ours, client, limit),
        Case(PEER_FLASK, "flask request", peer, client),
    ]


def pyramid_cases(manager: MongoManager, client: MongoClient[Any]) -> list[Case]:
    from pyramid.config import Configurator
    from pyramid.request import Request
    from pyramid.session import SignedCookieSessionFactory

    from mongo_session_backends.pyramid import MongoSessionFactory

    def app(factory: Any) -> Callable[[int], Any]:
        config = Configurator()
        config.set_session_factory(factory)

        def view(request: Any) -> Any:
            request.session["n"] = request.session.get("n", 0) + 1
            return request.response

        config.add_route("v", "/")
        config.add_view(view, route_name="v")
        wsgi = config.make_wsgi_app()
        cookies: dict[str, str] = {}

        def run(i: int) -> Any:
            request = Request.blank("/")
            if cookies:
                request.headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
            response = request.get_response(wsgi)
            for name, value in response.headers.items():
                if name == "Set-Cookie":
                    cookie = value.split(";", 1)[0]
                    cookies[cookie.split("=", 1)[0]] = cookie.split("=", 1)[1]
            return response

        return run

    ours = app(MongoSessionFactory("bench-secret-of-length", manager=manager))
    cookie = app(SignedCookieSessionFactory("bench-secret-of-length"))
    # An existing session is written only if still live (no resurrection).
    limit = [f"{RAW}: get", f"{RAW}: set if live", "Pyramid cookie session: request"]
    return [
        Case("Pyramid cookie session", "request", cookie),
        Case(OURS, "pyramid request", ours, client, limit),
    ]


def populate(
    client: MongoClient[Any], database: str, total: int, collection: str = "sessions"
) -> None:
    """Grow our collection to ``total`` documents of the usual shape."""
    coll = client[database][collection]
    far = dt.datetime(9999, 12, 31, tzinfo=dt.timezone.utc)
    have = coll.estimated_document_count()
    for start in range(have, total, 5000):
        stop = min(total, start + 5000)
        docs = [
            {"_id": f"fill{n}", "value": VALUE, "expires": far, "ns": ""}
            for n in range(start, stop)
        ]
        coll.insert_many(docs, ordered=False)
