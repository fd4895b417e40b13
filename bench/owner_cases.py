"""The "log out everywhere" cases: a write with an owner, listing and revoking.

* A session write of the same dict (``{"_user_id": "u17", ...}``) through
  ``MongoManager(owner_key="_user_id")`` and through ``MongoManager()``, each
  on its own collection of the same size, beside raw pymongo sending each
  one's command: the ``update_one`` filtered on "not revoked", and the
  ``replace_one`` with upsert; and a lower bound, raw pymongo replacing the
  whole owned document on a collection with the owner index.
* ``sessions(owner)`` and ``revoke(owner)`` with 100 owners of three live
  sessions each (as if logged in on three devices), on a collection of
  1,000 sessions and on one of 100,000; the rest of each collection are the
  sessions of other owners, three each, so the owner index grows with it.
  A revoke ends its owner's three sessions; before each one, untimed, one
  bulk write puts that owner's three sessions back as they were, so every
  timed revoke ends three live sessions and only the revoke is timed.
* Raw pymongo sends the same ``find`` and ``update_many`` on the same
  collections, as the ceiling.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from pymongo import MongoClient, ReplaceOne

from mongo_session_backends import MongoManager
from mongo_session_backends.manager import utcnow

from .cases import KEYS, OURS, RAW, VALUE, Case, key

OWNER_KEY = "_user_id"
OWNED_VALUE = {OWNER_KEY: "u17", **VALUE}
OWNERS = 100
PER_OWNER = 3
#: The collections: the two writes', and the listing and revoking ones at two sizes.
WRITE_ON, WRITE_OFF, OWNED, OWNED_LARGE = "owner_on", "owner_off", "owned", "owned_large"
WRITE_BOUND = "owner_replace"
LIFETIME = dt.timedelta(days=14)  # the manager's default ``expires``
_REVOKE: list[dict[str, Any]] = [
    {"$set": {"revoked": True}},
    {"$unset": ["value", "user", "handle"]},
]
#: The owner write cases' operations, by ``owner_key`` on and off.
WRITE_ON_OP, WRITE_OFF_OP = "set (owner_key on)", "set (owner_key off)"
#: The raw commands of the owner write cases: each one's, and the lower bound.
RAW_ON, RAW_OFF = "set (owner update_one)", "set (replace_one)"
RAW_BOUND = "set (owned document, replace_one)"
LIST_OP, REVOKE_OP = "owner sessions (list 3)", "owner revoke (3 sessions)"


def write_cases(client: MongoClient[Any], database: str) -> list[Case]:
    """The same session write with ``owner_key`` on and off, and their raw commands.

    Beside them, raw pymongo replaces the whole owned document (owner fields
    included) on a collection with the owner index: the cheapest single
    command that keeps an owner index, though it cannot keep the time
    created, so a lower bound for the write with ``owner_key`` on.
    """
    on = MongoManager(
        client=client, database_name=database, collection=WRITE_ON, owner_key=OWNER_KEY
    )
    off = MongoManager(client=client, database_name=database, collection=WRITE_OFF)
    bound = MongoManager(
        client=client, database_name=database, collection=WRITE_BOUND, owner_key=OWNER_KEY
    )
    bound.ensure_indexes()  # the same indexes as ``on``'s
    on_coll, off_coll = client[database][WRITE_ON], client[database][WRITE_OFF]
    bound_coll = client[database][WRITE_BOUND]
    handles = {k: on._core.handle(k) for k in (key(n) for n in range(KEYS))}

    def raw_owned(i: int) -> Any:
        now = utcnow()
        k = key(i)
        fields = {
            "value": OWNED_VALUE,
            "expires": now + LIFETIME,
            "ns": "",
            "written": now,
            "user": "u17",
            "handle": handles[k],
        }
        query = {"_id": k, "revoked": {"$ne": True}}
        update = {"$set": fields, "$min": {"created": now}}
        return on_coll.update_one(query, update, upsert=True)

    def raw_replace(i: int) -> Any:
        k = key(i)
        doc = {"_id": k, "value": OWNED_VALUE, "expires": utcnow() + LIFETIME, "ns": ""}
        return off_coll.replace_one({"_id": k}, doc, upsert=True)

    def raw_owned_replace(i: int) -> Any:
        now = utcnow()
        k = key(i)
        doc = {
            "_id": k,
            "value": OWNED_VALUE,
            "expires": now + LIFETIME,
            "ns": "",
            "written": now,
            "created": now,
            "user": "u17",
            "handle": handles[k],
        }
        return bound_coll.replace_one({"_id": k, "revoked": {"$ne": True}}, doc, upsert=True)

    cases = [
        Case(OURS, WRITE_ON_OP, lambda i: on.set(key(i), OWNED_VALUE), client,
             [f"{RAW}: {RAW_ON}"]),
        Case(OURS, WRITE_OFF_OP, lambda i: off.set(key(i), OWNED_VALUE), client,
             [f"{RAW}: {RAW_OFF}"]),
        Case(RAW, RAW_ON, raw_owned, client),
        Case(RAW, RAW_OFF, raw_replace, client),
        Case(RAW, RAW_BOUND, raw_owned_replace, client),
    ]  # fmt: skip
    for case in cases:  # every key the writes write is there before the first round
        for n in range(KEYS):
            case.run(n)
    return cases


def _owned_doc(core: Any, _id: str, owner: str, now: dt.datetime) -> dict[str, Any]:
    """A session of ``owner`` as the manager stores it (no prefix, ids not hashed)."""
    return {"_id": _id, "value": {OWNER_KEY: owner, **VALUE}, "expires": now + LIFETIME,
            "ns": "", "written": now, "created": now, "user": owner,
            "handle": core.handle(_id)}  # fmt: skip


class OwnedCollection:
    """A collection of ``size`` owned sessions: 100 listed owners, 100 revoked, the rest others'.

    :param client: the benchmark's client; ``database`` its database.
    :param collection: the collection's name.
    :param size: the number of sessions in it.
    """

    def __init__(
        self,
        client: MongoClient[Any],
        database: str,
        collection: str,
        size: int,
    ) -> None:
        self.manager = MongoManager(
            client=client, database_name=database, collection=collection, owner_key=OWNER_KEY
        )
        self.coll = client[database][collection]
        self.manager.ensure_indexes()
        core = self.manager._core
        now = utcnow()
        measured = [f"u{o}" for o in range(OWNERS)] + [f"r{o}" for o in range(OWNERS)]
        docs = [_owned_doc(core, f"s-{o}-{n}", o, now) for o in measured for n in range(PER_OWNER)]
        #: each revoked owner's sessions as first stored, to put back before its revoke
        self.restore = {
            o: [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs if d["user"] == o]
            for o in measured[OWNERS:]
        }
        self.coll.insert_many(docs, ordered=False)
        for start in range(len(docs), size, 5000):
            fill = [_owned_doc(core, f"fill{n}", f"other{n // PER_OWNER}", now)
                    for n in range(start, min(size, start + 5000))]  # fmt: skip
            self.coll.insert_many(fill, ordered=False)

    def revoke_timer(
        self, revoke: Callable[[str], int]
    ) -> Callable[[float, int], tuple[int, float]]:
        """Time ``revoke`` alone: before each call, untimed, its owner's sessions are put back."""

        def timer(seconds: float, start: int) -> tuple[int, float]:
            n, spent = 0, 0.0
            while n < 3 or spent < seconds:
                owner = f"r{(start + n) % OWNERS}"
                self.coll.bulk_write(self.restore[owner], ordered=False)
                began = time.perf_counter()
                ended = revoke(owner)
                spent += time.perf_counter() - began
                if ended != PER_OWNER:
                    raise AssertionError(f"revoke ended {ended} sessions, not {PER_OWNER}")
                n += 1
            return n, spent

        return timer

    def cases(self, client: MongoClient[Any]) -> list[Case]:
        """Ours and raw pymongo listing and revoking one owner's sessions."""
        manager, coll = self.manager, self.coll
        fields = {"handle": True, "created": True, "written": True, "expires": True}

        def raw_list(i: int) -> list[Any]:
            query = {"user": f"u{i % OWNERS}", "expires": {"$gt": utcnow()}}
            return list(coll.find(query, fields))

        def raw_revoke(owner: str) -> int:
            query = {"user": owner, "expires": {"$gt": utcnow()}}
            return coll.update_many(query, _REVOKE).modified_count

        ops: dict[str, tuple[Callable[[int], Any], Callable[[str], int]]] = {
            OURS: (lambda i: manager.sessions(f"u{i % OWNERS}"), manager.revoke),
            RAW: (raw_list, raw_revoke),
        }
        cases = []
        for system, (listing, revoke) in ops.items():
            limit = system == OURS
            cases += [
                Case(system, LIST_OP, listing, client, [f"{RAW}: {LIST_OP}"] if limit else []),
                Case(system, REVOKE_OP, _revoking(revoke), client,
                     [f"{RAW}: {REVOKE_OP}"] if limit else [],
                     timer=self.revoke_timer(revoke)),
            ]  # fmt: skip
        return cases


def _revoking(revoke: Callable[[str], int]) -> Callable[[int], int]:
    """``revoke`` as a case's ``run``: the ``i``-th revoked owner (for counting commands)."""
    return lambda i: revoke(f"r{i % OWNERS}")
