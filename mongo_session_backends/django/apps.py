"""The Django app ``mongo_session_backends.django``: a system check and a management command."""

from __future__ import annotations

from django.apps import AppConfig


class MongoSessionsConfig(AppConfig):  # type: ignore[misc]
    """Registers the settings check; ``manage.py mongo_sessions`` comes with the app."""

    name = "mongo_session_backends.django"
    label = "mongo_sessions"
    verbose_name = "MongoDB sessions and cache"

    def ready(self) -> None:
        from django.core.checks import register

        from .checks import TAG, check_settings

        register(check_settings, TAG)
