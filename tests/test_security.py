"""Data protection: encryption at rest, hashed ids, tampering, injection, logs."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import bson
import pytest

from mongo_session_backends import (
    ConfigurationError,
    KeyTypeError,
    MongoManager,
    MongoSessionError,
    generate_key,
)
from mongo_session_backends.beaker import MongoNamespaceManager
from mongo_session_backends.cachelib import MongoDBCache
from mongo_session_backends.crypto import Encryptor
from mongo_session_backends.pyramid import session_factory_from_settings

from .apps import pyramid_app

MARKER = "marker-7f3a-plaintext"
SECRET_KEY = "session-key-9c1e-secret"
ID_SECRET = "an-id-secret-of-some-length"


@pytest.fixture
def keys() -> list[str]:
    return [generate_key(), generate_key()]


def raw_dump(collection: Any) -> bytes:
    return b"".join(bson.encode(doc) for doc in collection.find())


def test_generate_key_and_bad_keys() -> None:
    assert generate_key() != generate_key()
    for bad in ["", "short", "not base64 !!!", generate_key()[:-4]]:
        with pytest.raises(ConfigurationError):
            Encryptor(bad)
    assert "keys=1" in repr(Encryptor(generate_key()))


def test_no_plaintext_at_rest(
    manager_options: dict[str, Any], collection: Any, keys: list[str]
) -> None:
    m = MongoManager(encryption_keys=keys[0], **manager_options)
    m.set(SECRET_KEY, {"token": MARKER})
    m.set("n", 5)
    assert MARKER.encode() not in raw_dump(collection)
    assert m.get(SECRET_KEY) == {"token": MARKER}
    assert m.incr("n", 2) == 7  # encrypted integers use compare-and-swap
    assert m.add("new", MARKER) and not m.add("new", MARKER)


def test_key_rotation(manager_options: dict[str, Any], collection: Any, keys: list[str]) -> None:
    old, new = keys
    MongoManager(encryption_keys=[old], **manager_options).set("a", MARKER)
    rotated = MongoManager(encryption_keys=[new, old], **manager_options)
    assert rotated.get("a") == MARKER  # old entries still read
    rotated.set("b", MARKER)
    only_new = MongoManager(encryption_keys=[new], **manager_options)
    assert only_new.get("b") == MARKER  # written with the new key
    assert only_new.get("a") is None  # the old key is gone: a miss


def test_tampering_reads_as_miss(
    manager_options: dict[str, Any],
    collection: Any,
    keys: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    m = MongoManager(encryption_keys=keys, **manager_options)
    m.set("a", {"v": MARKER})
    m.set("b", {"v": "other"})
    value = collection.find_one({"_id": "a"})["value"]
    flipped = value[:-1] + bytes([value[-1] ^ 1])
    collection.update_one({"_id": "a"}, {"$set": {"value": flipped}})
    assert m.get("a") is None
    collection.update_one({"_id": "b"}, {"$set": {"value": value}})  # a's value moved to b
    assert m.get("b") is None
    collection.update_one({"_id": "b"}, {"$set": {"value": b"garbage"}})
    assert m.get("b", "miss") == "miss"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert MARKER not in caplog.text and "other" not in caplog.text


def test_attacker_pickle_never_runs(
    manager_options: dict[str, Any], collection: Any, tmp_path: Any
) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> Any:
            return (open, (str(marker), "w"))

    payload = pickle.dumps(Exploit())
    default = MongoManager(**manager_options)
    signed = MongoManager(serializer="pickle", serializer_secret=ID_SECRET, **manager_options)
    default.set("k", "innocent")
    collection.update_one({"_id": "k"}, {"$set": {"value": payload}})
    assert default.get("k") == payload  # bytes stay bytes: never unpickled
    assert signed.get("k") is None
    collection.update_one({"_id": "k"}, {"$set": {"value": b"\x00" * 32 + payload}})
    assert signed.get("k") is None
    cache = MongoDBCache(**manager_options)
    assert cache.get("k") == b"\x00" * 32 + payload
    assert not marker.exists()
    signed.set("ok", {"a": 1})
    assert signed.get("ok") == {"a": 1}


def test_hashed_ids(manager_options: dict[str, Any], collection: Any, clock: Any) -> None:
    m = MongoManager(hash_ids=True, id_secret=ID_SECRET, **manager_options)
    cache = MongoDBCache(key_prefix="app:", manager=m)
    cache.set(SECRET_KEY, 1, timeout=10)
    dump = raw_dump(collection)
    assert SECRET_KEY.encode() not in dump and b"app:" not in dump
    assert cache.get(SECRET_KEY) == 1 and cache.has(SECRET_KEY)
    assert m.with_prefix("app:").touch(SECRET_KEY, 100)
    clock.advance(50)
    assert cache.get(SECRET_KEY) == 1
    assert cache.inc("n") == 1 and cache.delete("n")
    other = MongoDBCache(key_prefix="other:", manager=m)
    other.set("x", 1)
    assert cache.clear() and other.get("x") == 1
    with pytest.raises(ConfigurationError):
        list(m.keys())
    clock.advance(51)
    cache.set("e", 1, timeout=1)
    clock.advance(2)
    assert cache.get("e") is None


@pytest.mark.parametrize(
    "doc",
    [
        {"_id": "k", "expires": "tomorrow", "value": 1, "ns": ""},
        {"_id": "k", "ns": ""},
        {"_id": "k", "expires": None, "value": 1},
        {"_id": "k", "expires": bson.datetime.datetime(9999, 1, 1), "ns": ""},
        {
            "_id": "k",
            "expires": bson.datetime.datetime(9999, 1, 1),
            "value": {"~t": "set"},
            "ns": "",
        },
        {
            "_id": "k",
            "expires": bson.datetime.datetime(9999, 1, 1),
            "value": {"~t": "uuid", "v": "x"},
            "ns": "",
        },
        {
            "_id": "k",
            "expires": bson.datetime.datetime(9999, 1, 1),
            "value": b"\x01garbage",
            "ns": "",
        },
    ],
)
def test_corrupt_documents_are_misses(
    manager_options: dict[str, Any], collection: Any, keys: list[str], doc: dict[str, Any]
) -> None:
    collection.insert_one(doc)
    collection.insert_one(
        {"_id": 42, "foreign": True, "expires": bson.datetime.datetime(9999, 1, 1), "ns": ""}
    )
    for m in (
        MongoManager(**manager_options),
        MongoManager(encryption_keys=keys, **manager_options),
    ):
        assert m.get("k", "miss") in ("miss", b"\x01garbage")
        assert m.get_many(["k"], "miss")[0] in ("miss", b"\x01garbage")
        if not isinstance(doc.get("expires"), bson.datetime.datetime):
            assert not m.has("k")  # no usable expiry: never live
        assert all(isinstance(k, str) for k in m.keys())
        assert m.count() <= 2
    cache = MongoDBCache(**manager_options)
    assert cache.get("k") in (None, b"\x01garbage")


@pytest.mark.parametrize("key", [{"$gt": ""}, {"$regex": ".*"}, ["a"], 1, None])
def test_injection_is_refused_before_any_query(
    manager: MongoManager, counter: Any, key: Any
) -> None:
    manager.set("victim", 1)
    counter.reset()
    for operation in (manager.get, manager.has, manager.delete, manager.touch):
        with pytest.raises(KeyTypeError):
            operation(key)
    assert counter.commands == []
    assert manager.get("victim") == 1


def test_no_secrets_in_messages_or_logs(
    manager_options: dict[str, Any], caplog: pytest.LogCaptureFixture, keys: list[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="mongo_session_backends")
    m = MongoManager(encryption_keys=keys, hash_ids=True, id_secret=ID_SECRET, **manager_options)
    texts = [repr(m)]
    m.set(SECRET_KEY, MARKER)
    for failing in (
        lambda: m.incr(SECRET_KEY),
        lambda: m.set(SECRET_KEY, object()),
        lambda: m.set(SECRET_KEY, MARKER * 2_000_000),
    ):
        with pytest.raises(MongoSessionError) as info:
            failing()
        texts.append(str(info.value))
    plain = MongoManager(**manager_options)
    plain.set(SECRET_KEY, MARKER)
    with pytest.raises(MongoSessionError) as info:
        plain.incr(SECRET_KEY)
    texts.append(str(info.value))
    texts.append(caplog.text)
    for text in texts:
        for secret in (MARKER, SECRET_KEY, ID_SECRET, *keys):
            assert secret not in text


def test_ini_settings_with_environment_secrets(
    monkeypatch: pytest.MonkeyPatch,
    mongodb_uri: str,
    database_name: str,
    keys: list[str],
    admin_client: Any,
) -> None:
    monkeypatch.setenv("SESSION_KEY_NEW", keys[0])
    monkeypatch.setenv("SESSION_KEY_OLD", keys[1])
    monkeypatch.setenv("SESSION_ID_SECRET", ID_SECRET)
    monkeypatch.setenv("SESSION_SECRET", "cookie-signing-secret-123")
    settings = {
        "mongo_sessions.uri": mongodb_uri,
        "mongo_sessions.database_name": database_name,
        "mongo_sessions.secret": "env:SESSION_SECRET",
        "mongo_sessions.encryption_keys": "env:SESSION_KEY_NEW, env:SESSION_KEY_OLD",
        "mongo_sessions.hash_ids": "true",
        "mongo_sessions.id_secret": "env:SESSION_ID_SECRET",
    }

    def view(request: Any) -> Any:
        request.session["v"] = MARKER
        return request.response

    app = pyramid_app(view, settings=settings, include="mongo_session_backends.pyramid")
    app.get("/")
    factory = session_factory_from_settings(settings)
    sid = factory._profile.serializer.loads(app.cookies["session"].encode())
    dump = raw_dump(admin_client[database_name]["sessions"])
    assert len(sid) >= 43
    assert MARKER.encode() not in dump and sid.encode() not in dump
    assert factory.store._core.cipher is not None and factory.store._core.hasher is not None

    ns = MongoNamespaceManager(
        "ns",
        url=f"{mongodb_uri.rstrip('/')}/{database_name}",
        collection="beaker",
        encryption_keys="env:SESSION_KEY_NEW",
        hash_ids="true",
        id_secret="env:SESSION_ID_SECRET",
    )
    ns["session"] = MARKER
    assert ns["session"] == MARKER
    assert MARKER.encode() not in raw_dump(admin_client[database_name]["beaker"])
