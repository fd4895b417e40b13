"""The indexes a manager needs, how they differ from what exists, and stats."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, cast

from pymongo.collection import Collection

from .exceptions import IndexConflict

__all__ = ["Difference", "collection_stats", "differences", "ensure_indexes", "purge_expired"]


class Difference(NamedTuple):
    """One way the existing indexes differ from the wanted ones."""

    kind: str  # "missing", "ttl" (wrong expireAfterSeconds), or "conflict"
    field: str
    options: dict[str, Any]
    name: str | None = None  # the existing index's name

    def describe(self) -> str:
        if self.kind == "missing":
            return f"missing index on {self.field}"
        if self.kind == "ttl":
            return f"index {self.name!r} on {self.field} has the wrong expireAfterSeconds"
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
            kind = "ttl" if "expireAfterSeconds" in index else "conflict"
            found.append(Difference(kind, field, options, index["name"]))
        if options.get("unique") and not index.get("unique"):
            found.append(Difference("conflict", field, options, index["name"]))
    return found


def ensure_indexes(
    collection: Collection[Any], wanted: Iterable[tuple[str, dict[str, Any]]]
) -> list[str]:
    """Create missing indexes and fix TTL periods; return what was done.

    Raises :class:`~mongo_session_backends.IndexConflict` for an index that
    cannot be fixed in place, naming it.
    """
    done = []
    for diff in differences(collection.list_indexes(), wanted):
        if diff.kind == "conflict":
            raise IndexConflict(diff.describe())
        if diff.kind == "missing":
            collection.create_index(diff.field, **diff.options)
            done.append(f"created index on {diff.field}")
        else:
            ttl = diff.options["expireAfterSeconds"]
            collection.database.command(
                "collMod", collection.name, index={"name": diff.name, "expireAfterSeconds": ttl}
            )
            done.append(f"set expireAfterSeconds={ttl} on index {diff.name!r}")
    return done


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

    :param live: the query matching live entries; ``expired`` its opposite.
    :param progress: called with a description of each step. Default ``None``.
    """
    total = largest = count = 0
    for batch in collection.find_raw_batches():
        for size in _document_sizes(cast(bytes, batch)):
            total += size
            largest = max(largest, size)
            count += 1
    existing = list(collection.list_indexes())
    return {
        "live": collection.count_documents(live),
        "expired": collection.count_documents(expired),
        "documents": count,
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
    """Delete the documents matching ``expired``; return how many.

    :param batch_size: documents per delete command. Default 1000.
    :param progress: called with the running total after each batch.
    """
    deleted = collection.delete_many(dict(expired)).deleted_count
    if progress is not None:
        progress(deleted)
    return deleted
