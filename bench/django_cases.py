"""Django requests: our session engine, its limit, and Django's own engines beside it.

Django is configured once, by :func:`configure`, with every engine's
settings at once (a SQLite file and a session folder in a temporary
directory, a locmem cache, ``MONGO_SESSIONS``); each engine gets its own
test client, whose middleware is loaded with ``SESSION_ENGINE`` set to that
engine and keeps it. The settings touch nothing outside Django: no logging
configuration, and the engine's client is its own.

Each request is the same view: the session's visit counter plus one, and the
cart stored again, so every request loads and saves its session.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from mongo_session_backends.manager import utcnow

from .cases import KEYS, OURS, RAW, VALUE, Case, key

ENGINE = "mongo_session_backends.django.session"
COLLECTION = "django_sessions"
#: Django's engines measured beside ours, by system name: signed cookies is
#: part of our limit, the others are reference points.
SIGNED = "Django signed_cookies"
REFERENCES = {
    SIGNED: "django.contrib.sessions.backends.signed_cookies",
    "Django db (SQLite)": "django.contrib.sessions.backends.db",
    "Django file": "django.contrib.sessions.backends.file",
    "Django cache (locmem)": "django.contrib.sessions.backends.cache",
}
OPERATION = "django request"
#: Raw pymongo on our engine's collection, with its indexes: our limit's commands.
RAW_ENGINE = f"{RAW} (the engine's collection)"
PREFIX = "django-session:"  # the engine's key prefix
LIFETIME = dt.timedelta(seconds=1_209_600)  # Django's SESSION_COOKIE_AGE


def view(request: HttpRequest) -> HttpResponse:
    request.session["n"] = request.session.get("n", 0) + 1
    request.session["cart"] = VALUE["cart"]
    return HttpResponse("ok")


urlpatterns = [path("", view)]


def configure(uri: str, database: str, connection_options: dict[str, Any]) -> str:
    """Configure Django for this process; return the temporary folder it writes in.

    :param uri: the server; ``database`` the benchmark's database.
    :param connection_options: our engine's client options (the benchmark's,
        with its command listener).
    """
    import django
    from django.conf import settings
    from django.core.management import call_command

    folder = tempfile.mkdtemp(prefix="bench-django-")
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-secret-" + "x" * 40,
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        LOGGING_CONFIG=None,  # leave the process's logging alone
        INSTALLED_APPS=["django.contrib.sessions"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": f"{folder}/db.sqlite3"}
        },
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        SESSION_FILE_PATH=folder,
        SESSION_ENGINE=ENGINE,
        MONGO_SESSIONS={
            "LOCATION": uri,
            "OPTIONS": {
                "database_name": database,
                "collection": COLLECTION,
                "connection_options": connection_options,
            },
        },
    )
    django.setup()
    call_command("migrate", "sessions", verbosity=0)  # the db engine's table
    return folder


def _client(engine: str) -> Callable[[int], Any]:
    """One request per call through Django's test client, on ``engine``."""
    from django.test import Client, override_settings

    client = Client()
    with override_settings(SESSION_ENGINE=engine):
        client.get("/")  # loads the middleware, which keeps this engine; creates the session
    return lambda i: client.get("/")


def raw_engine_cases(mongo_client: Any, database: str) -> list[Case]:
    """Raw pymongo sending our engine's two commands on its own collection.

    The engine's collection has the indexes our engine makes, and each
    write stores a session of the view's shape: the limit's commands, on
    the same work.
    """
    coll = mongo_client[database][COLLECTION]

    def doc(k: str, n: int) -> dict[str, Any]:
        value = {"n": n, "cart": VALUE["cart"]}
        return {"_id": PREFIX + k, "value": value, "expires": utcnow() + LIFETIME, "ns": PREFIX}

    for n in range(KEYS):
        coll.replace_one({"_id": PREFIX + key(n)}, doc(key(n), 0), upsert=True)

    def get(i: int) -> Any:
        found = coll.find_one({"_id": PREFIX + key(i)})
        return found if found is not None and found["expires"] > utcnow() else None

    def set_if_live(i: int) -> Any:
        query = {"_id": PREFIX + key(i), "expires": {"$gt": utcnow()}}
        return coll.replace_one(query, doc(key(i), i))

    return [
        Case(RAW_ENGINE, "get", get, mongo_client),
        Case(RAW_ENGINE, "set if live", set_if_live, mongo_client),
    ]


def django_cases(mongo_client: Any, database: str) -> list[Case]:
    """Our engine's request with its limit, and Django's engines' requests.

    :param mongo_client: any client with the benchmark's command listener,
        so that our engine's commands are counted.
    :param database: the benchmark's database.
    """
    limit = [f"{RAW_ENGINE}: get", f"{RAW_ENGINE}: set if live", f"{SIGNED}: request"]
    cases = [Case(OURS, OPERATION, _client(ENGINE), mongo_client, limit)]
    cases += raw_engine_cases(mongo_client, database)
    cases += [Case(name, "request", _client(engine)) for name, engine in REFERENCES.items()]
    return cases
