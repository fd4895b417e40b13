"""How the indexes that exist differ from those a manager needs. No I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

__all__ = ["Difference", "differences"]


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
