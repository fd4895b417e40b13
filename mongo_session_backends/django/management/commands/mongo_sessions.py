"""``manage.py mongo_sessions stats|ensure_indexes|purge_expired|sessions|revoke``."""

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
        "expired entries (needed only with cleanup='none'); sessions --user ID lists the "
        "live sessions of a user as JSON, and revoke --user ID ends them all (both need "
        "OPTIONS owner_key='_auth_user_id' in MONGO_SESSIONS)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action", choices=["stats", "ensure_indexes", "purge_expired", "sessions", "revoke"]
        )
        parser.add_argument(
            "--cache", metavar="ALIAS", help="a MongoDBCache alias of CACHES (default: sessions)"
        )
        parser.add_argument(
            "--user", metavar="ID", help="for sessions and revoke: the user's id (pk)"
        )
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
        action, user = options["action"], options["user"]
        owned = action in ("sessions", "revoke")
        if owned and options["cache"] is not None:
            raise CommandError(f"{action} is for the session engine's sessions: leave out --cache")
        if owned and user is None:
            raise CommandError(f"{action} needs --user ID")
        if not owned and user is not None:
            raise CommandError(f"--user is for sessions and revoke, not {action}")
        try:
            manager = self._manager(options["cache"])
            if owned and manager.owner_key is None:
                raise CommandError(
                    f"{action} needs the option owner_key='_auth_user_id' in MONGO_SESSIONS"
                )
            if action == "stats":
                self.stdout.write(json.dumps(manager.stats(), indent=2, default=str))
            elif action == "ensure_indexes":
                for line in manager.ensure_indexes() or ["indexes are already in place"]:
                    self.stdout.write(line)
            elif action == "purge_expired":
                deleted = manager.purge_expired(batch_size=options["batch_size"])
                self.stdout.write(f"deleted {deleted} expired entries")
            elif action == "sessions":
                found = manager.sessions(user)
                self.stdout.write(json.dumps(found, indent=2, default=str))
            else:
                # Django stores the user's id as a string (the primary key's text).
                ended = manager.revoke(user)
                self.stdout.write(f"ended {ended} sessions")
        except MongoSessionError as exc:
            raise CommandError(str(exc)) from None
