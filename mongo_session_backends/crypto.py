"""Encryption at rest and keyed hashing of ids.

Values are sealed with AES-256-GCM from the ``cryptography`` package, with
the stored id as associated data: a value copied into another document does
not decrypt there. Several keys may be configured; the first encrypts and all
decrypt, so keys rotate without logging anyone out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable

from .exceptions import ConfigurationError

__all__ = ["Encryptor", "KeyHasher", "generate_key"]

_VERSION = b"\x01"
_NONCE = 12


def generate_key() -> str:
    """Return a new random 256-bit key, URL-safe base64 encoded."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _decode_key(key: str | bytes) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(key)
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 32:
        raise ConfigurationError(
            "an encryption key must be 32 bytes in URL-safe base64; make one with generate_key()"
        )
    return raw


class Encryptor:
    """Authenticated encryption with key rotation.

    :param keys: one key or several, each from :func:`generate_key`. The
        first encrypts; every key is tried for decryption.
    """

    def __init__(self, keys: str | bytes | Iterable[str | bytes]) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:  # pragma: no cover
            raise ConfigurationError(
                "encryption needs the cryptography package: "
                "pip install 'mongo-session-backends[encryption]'"
            ) from None
        if isinstance(keys, (str, bytes)):
            keys = [keys]
        raw = [_decode_key(k) for k in keys]
        if not raw:
            raise ConfigurationError("encryption needs at least one key")
        # A short fingerprint of each key lets decryption pick the right one.
        pairs = [(hashlib.sha256(b"key-id:" + k).digest()[:4], AESGCM(k)) for k in raw]
        self._ciphers = dict(pairs)
        self._first = pairs[0]

    def __repr__(self) -> str:
        return f"Encryptor(keys={len(self._ciphers)})"

    def encrypt(self, data: bytes, associated: bytes) -> bytes:
        key_id, cipher = self._first
        nonce = os.urandom(_NONCE)
        return _VERSION + key_id + nonce + cipher.encrypt(nonce, data, associated)

    def decrypt(self, token: bytes, associated: bytes) -> bytes:
        """Return the plaintext; raise ``ValueError`` if it does not authenticate."""
        token = bytes(token)
        if token[:1] != _VERSION:
            raise ValueError("unknown token version")
        cipher = self._ciphers.get(token[1:5])
        if cipher is None:
            raise ValueError("no key for this token")
        nonce, sealed = token[5 : 5 + _NONCE], token[5 + _NONCE :]
        try:
            return bytes(cipher.decrypt(nonce, sealed, associated))
        except Exception:
            raise ValueError("token does not authenticate") from None


class KeyHasher:
    """HMAC-SHA256 of a key, hex encoded, so stored ids reveal nothing.

    :param secret: the HMAC key, at least 16 bytes.
    """

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(key) < 16:
            raise ConfigurationError("the id secret must be at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "KeyHasher(secret=***)"

    def __call__(self, key: str) -> str:
        return hmac.new(self._key, key.encode("utf-8"), hashlib.sha256).hexdigest()
