"""The system check of the MongoDB session engine and cache settings.

Run by ``manage.py check`` and at the start of ``runserver`` and
``migrate`` when ``"mongo_session_backends.django"`` is in ``INSTALLED_APPS``.
It builds each configured store as the first request would (without
connecting), so a mistyped option, a malformed value, a missing secret or
environment variable is reported before the first request.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from ..exceptions import MongoSessionError

__all__ = ["CACHE_BACKEND", "SESSION_ENGINE", "check_settings"]

SESSION_ENGINE = "mongo_session_backends.django.session"
CACHE_BACKEND = "mongo_session_backends.django.cache.MongoDBCache"
_DEFAULT_SERIALIZER = "django.contrib.sessions.serializers.JSONSerializer"


@register(Tags.caches, Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Errors for the ``MONGO_SESSIONS`` setting and each MongoDB ``CACHES`` entry."""
    from .cache import MongoDBCache
    from .session import SETTING, session_stores

    messages: list[CheckMessage] = []
    if settings.SESSION_ENGINE == SESSION_ENGINE:
        try:
            session_stores()
        except MongoSessionError as exc:
            messages.append(Error(str(exc), obj=SETTING, id="mongo_sessions.E001"))
        if settings.SESSION_SERIALIZER != _DEFAULT_SERIALIZER:
            messages.append(
                Warning(
                    "SESSION_SERIALIZER is not used by the MongoDB session engine",
                    hint=f'sessions are stored as BSON; choose {SETTING}["OPTIONS"]["serializer"]',
                    obj="SESSION_SERIALIZER",
                    id="mongo_sessions.W001",
                )
            )
    for alias, entry in settings.CACHES.items():
        if entry.get("BACKEND") != CACHE_BACKEND:
            continue
        try:
            MongoDBCache(entry.get("LOCATION", ""), entry)
        except MongoSessionError as exc:
            messages.append(Error(str(exc), obj=f"CACHES[{alias!r}]", id="mongo_sessions.E002"))
    return messages
