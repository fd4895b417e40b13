"""MongoDB storage for web sessions and caches.

One shared :class:`MongoManager` (and :class:`AsyncMongoManager` for
asyncio apps) with thin adapters for cachelib
(:mod:`mongo_session_backends.cachelib`), Beaker
(:mod:`mongo_session_backends.beaker`) and Pyramid
(:mod:`mongo_session_backends.pyramid`).
"""

from .async_manager import AsyncMongoManager
from .crypto import generate_key
from .exceptions import (
    ConfigurationError,
    DeleteManyError,
    IndexConflict,
    KeyTypeError,
    ManagerClosed,
    MongoSessionError,
    OperationError,
    SerializationError,
    ServerUnavailable,
    ValueTooLarge,
)
from .manager import MongoManager
from .serializers import JSONSerializer, NativeSerializer, PickleSerializer, Serializer

__version__ = "0.1.0"

__all__ = [
    "AsyncMongoManager",
    "ConfigurationError",
    "DeleteManyError",
    "IndexConflict",
    "JSONSerializer",
    "KeyTypeError",
    "ManagerClosed",
    "MongoManager",
    "MongoSessionError",
    "NativeSerializer",
    "OperationError",
    "PickleSerializer",
    "SerializationError",
    "Serializer",
    "ServerUnavailable",
    "ValueTooLarge",
    "generate_key",
]
