"""The indexes a manager needs, how they differ from what exists, and stats."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, cast

from pymongo.collection import Collection

from .exceptions import ConfigurationError

__all__ = ["Difference", "collection_stats", "differences", "purge_expired"]


class Difference(NamedTuple):
    """One way the existing indexes differ from the wanted ones."""

    kind: str  # "missing", "ttl" (wrong expireAfterSeconds), or "conflict"
    field: str
    options: dict[str, Any]
    name: str | None = None  # the existing index's name
    actual: Any = None  # the existing index's expireAfterSeconds, for "ttl"

    def describe(self) -> str:
        if self.kind == "missing":
            return f"missing index on {self.field}"
        if self.kind == "ttl":
            return (
                f"index {self.name!r} on {self.field} has the wrong expireAfterSeconds: "
                f"{self.actual}, expected {self.options['expireAfterSeconds']}"
            )
        if "unique" in self.options:
            return f"index {self.name!r} on {self.field!r} must be unique"
        return (
            f"index {self.name!r} on {self.field!r} is not a TTL index; "
            "drop it or use cleanup='none'"
        )


def differences(
    existing: Iterable[Mapping[str, Any]], wanted: Iterable[tuple[str, dict[str, Any]]]
) -> list[Difference]:
    """Compare ``existing`` index documents with ``wanted`` single-field indexes."""
    by_key = {tuple(index["key"].items()): index for index in existing}
    found = []
    for field, options in wanted:
        index = by_key.get(((field, 1),))
        if index is None:
            found.append(Difference("missing", field, options))
            continue
        ttl = options.get("expireAfterSeconds")
        if ttl is not None and index.get("expireAfterSeconds") != ttl:
            if "expireAfterSeconds" in index:
                actual = index["expireAfterSeconds"]
                found.append(Difference("ttl", field, options, index["name"], actual))
            else:
                found.append(Difference("conflict", field, options, index["name"]))
        if options.get("unique") and not index.get("unique"):
            found.append(Difference("conflict", field, options, index["name"]))
    return found


def _document_sizes(batch: bytes) -> Iterator[int]:
    position = 0
    while position < len(batch):
        size = int.from_bytes(batch[position : position + 4], "little")
        yield size
        position += size


def collection_stats(
    collection: Collection[Any],
    wanted: Iterable[tuple[str, dict[str, Any]]],
    live: Mapping[str, Any],
    expired: Mapping[str, Any],
    progress: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Entry counts, document sizes and index problems. Reads only.

    Sizes are in bytes of BSON. The result names the database and
    collection it read.

    :param live: the query matching live entries; ``expired`` its opposite.
    :param progress: called with a description of each step, and during the
        scan of the documents with the number read so far. Default ``None``.
    """

    def step(text: str) -> None:
        if progress is not None:
            progress(text)

    total = largest = count = 0
    step("reading documents")
    for batch in collection.find_raw_batches():
        for size in _document_sizes(cast(bytes, batch)):
            total += size
            largest = max(largest, size)
            count += 1
        step(f"reading documents: {count:,} so far")
    step("counting live entries")
    live_count = collection.count_documents(live)
    step("counting expired entries")
    expired_count = collection.count_documents(expired)
    step("reading indexes")
    existing = list(collection.list_indexes())
    return {
        "database": collection.database.name,
        "collection": collection.name,
        "live": live_count,
        "expired": expired_count,
        "documents": count,
        "total_size": total,
        "average_size": total // count if count else 0,
        "largest_size": largest,
        "indexes": sorted(index["name"] for index in existing),
        "index_problems": [d.describe() for d in differences(existing, wanted)],
    }


def purge_expired(
    collection: Collection[Any],
    expired: Mapping[str, Any],
    *,
    batch_size: int = 1000,
    progress: Callable[[int], Any] | None = None,
) -> int:
    """Delete the documents matching ``expired`` in bounded batches; return how many.

    Each batch is one ``find`` of at most ``batch_size`` ids, in ``_id``
    order from where the previous batch ended, then one ``delete`` of the
    documents in that ``_id`` range that still match ``expired``: an entry
    refreshed in between is kept, and no command runs long or touches more
    than one batch.

    :param batch_size: the most documents one batch finds and deletes.
        Default 1000.
    :param progress: called with the running total after each batch.
        Default ``None``.
    :raises ConfigurationError: if ``batch_size`` is not a positive int.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError("batch_size must be a positive int")
    deleted = 0
    after: Any = None
    while True:
        query = dict(expired) if after is None else {**expired, "_id": {"$gt": after}}
        ids = [
            doc["_id"]
            for doc in collection.find(query, {"_id": True}, sort=[("_id", 1)], limit=batch_size)
        ]
        if ids:
            first, last = ids[0], ids[-1]
            # A range is cheap on every server; ids of two BSON types make no range.
            same_type = type(first) is type(last)
            span = {"$gte": first, "$lte": last} if same_type else {"$in": ids}
            deleted += collection.delete_many({**expired, "_id": span}).deleted_count
            if progress is not None:
                progress(deleted)
        if len(ids) == batch_size:
            after = ids[-1]
        elif after is None:
            return deleted
        else:
            # "$gt" only compares within one BSON type: look once more from the start.
            after = None
