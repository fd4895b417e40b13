"""``manage.py mongo_sessions stats|ensure_indexes|purge_expired|revoke``."""

from __future__ import annotations

import json
from typing import Any

from django.core.cache import caches
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ....exceptions import MongoSessionError
from ....manager import MongoManager
from ...cache import MongoDBCache
from ...session import session_stores


class Command(BaseCommand):  # type: ignore[misc]
    help = (
        "Maintain the collection of the MongoDB session engine (MONGO_SESSIONS), or with "
        "--cache that of a MongoDB cache of CACHES: stats prints counts, sizes and index "
        "problems as JSON; ensure_indexes creates or fixes the indexes; purge_expired deletes "
        "expired entries (needed only with cleanup='none'); revoke --user ID ends every "
        "session of a user (needs OPTIONS owner_key='_auth_user_id')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action", choices=["stats", "ensure_indexes", "purge_expired", "revoke"]
        )
        parser.add_argument(
            "--cache", metavar="ALIAS", help="a MongoDBCache alias of CACHES (default: sessions)"
        )
        parser.add_argument("--user", metavar="ID", help="for revoke: the user's id (pk)")
        parser.add_argument(
            "--batch-size", type=int, default=1000, help="documents per delete (default 1000)"
        )

    def _manager(self, alias: str | None) -> MongoManager:
        if alias is None:
            return session_stores().sync
        if alias not in caches.settings:
            raise CommandError(f"no cache {alias!r} in CACHES")
        cache = caches[alias]
        if not isinstance(cache, MongoDBCache):
            raise CommandError(f"the cache {alias!r} is not a MongoDBCache")
        return cache._stores.sync

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manager = self._manager(options["cache"])
            action = options["action"]
            if action == "stats":
                self.stdout.write(json.dumps(manager.stats(), indent=2, default=str))
            elif action == "ensure_indexes":
                for line in manager.ensure_indexes() or ["indexes are already in place"]:
                    self.stdout.write(line)
            elif action == "purge_expired":
                deleted = manager.purge_expired(batch_size=options["batch_size"])
                self.stdout.write(f"deleted {deleted} expired entries")
            else:
                if options["user"] is None:
                    raise CommandError("revoke needs --user ID")
                if manager.owner_key is None:
                    where = "MONGO_SESSIONS" if options["cache"] is None else "the cache's OPTIONS"
                    raise CommandError(
                        f"revoke needs the option owner_key='_auth_user_id' in {where}"
                    )
                # Django stores the user's id as a string (the primary key's text).
                ended = manager.revoke(options["user"])
                self.stdout.write(f"ended {ended} sessions")
        except MongoSessionError as exc:
            raise CommandError(str(exc)) from None
