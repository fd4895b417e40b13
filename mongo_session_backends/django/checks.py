"""The system check of the MongoDB session engine and cache settings.

Run by ``manage.py check`` and at the start of ``runserver`` and
``migrate`` when ``"mongo_session_backends.django"`` is in ``INSTALLED_APPS``.
It builds the session engine's store as the first request would (without
connecting), so a mistyped option, a malformed value, a missing secret or
environment variable is reported before the first request. (Django's own
checks build every cache of ``CACHES``, so a mistake in a MongoDB cache's
options stops ``check`` and ``runserver`` with its
:class:`~mongo_session_backends.ConfigurationError`, with or without the app.)
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.checks import CheckMessage, Error, Warning

from ..exceptions import MongoSessionError

__all__ = ["SESSION_ENGINE", "TAG", "check_settings"]

SESSION_ENGINE = "mongo_session_backends.django.session"
#: The check's tag: ``manage.py check --tag mongo_sessions`` runs it alone.
TAG = "mongo_sessions"
_DEFAULT_SERIALIZER = "django.contrib.sessions.serializers.JSONSerializer"


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """An error for a malformed ``MONGO_SESSIONS``; warnings for an ``owner_key`` other
    than Django's ``_auth_user_id`` and for ``SESSION_SERIALIZER``."""
    from .session import SETTING, session_stores

    messages: list[CheckMessage] = []
    if settings.SESSION_ENGINE == SESSION_ENGINE:
        try:
            owner_key = session_stores().sync.owner_key
        except MongoSessionError as exc:
            messages.append(Error(str(exc), obj=SETTING, id="mongo_sessions.E001"))
        else:
            if owner_key is not None and owner_key != SESSION_KEY:
                messages.append(
                    Warning(
                        f"owner_key is {owner_key!r}, but Django's auth keeps the user id "
                        f"under {SESSION_KEY!r}: no session will record its owner",
                        hint=f'set {SETTING}["OPTIONS"]["owner_key"] = "{SESSION_KEY}"',
                        obj=SETTING,
                        id="mongo_sessions.W002",
                    )
                )
        if settings.SESSION_SERIALIZER != _DEFAULT_SERIALIZER:
            messages.append(
                Warning(
                    "SESSION_SERIALIZER is not used by the MongoDB session engine",
                    hint=f'sessions are stored as BSON; choose {SETTING}["OPTIONS"]["serializer"]',
                    obj="SESSION_SERIALIZER",
                    id="mongo_sessions.W001",
                )
            )
    return messages
