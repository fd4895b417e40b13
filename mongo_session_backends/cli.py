"""The ``mongo-sessions`` command (also ``python -m mongo_session_backends``)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .exceptions import MongoSessionError, ServerUnavailable
from .manager import MongoManager, mask_uri

__all__ = ["main"]


def _connection_arguments(parser: argparse.ArgumentParser, uri_default: str | None) -> None:
    parser.add_argument(
        "--uri",
        default=uri_default,
        help="MongoDB connection string"
        + ("" if uri_default is None else f" (default {uri_default})"),
    )
    parser.add_argument("--database", help="database (default: the URI's, else 'sessions')")
    parser.add_argument("--collection", default="sessions", help="collection (default 'sessions')")
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for MongoDB (default 5)"
    )


def _cleanup_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cleanup", choices=("ttl", "cosmos", "none"), default="ttl",
                        help="expiry cleanup mode (default ttl)")  # fmt: skip
    parser.add_argument("--expires", type=float, default=14 * 86400,
                        help="lifetime in seconds for --cleanup cosmos (default 14 d)")  # fmt: skip
    parser.add_argument("--expire-after-seconds", type=int, default=0,
                        help="TTL grace period in seconds (default 0)")  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mongo-sessions", description="MongoDB sessions and caches for Python web apps."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="serve a demo web app that keeps its sessions in MongoDB",
        description="Serve a small web app whose sessions live in MongoDB. Without --uri "
        "it starts the embedded MongoDB-compatible server itself.",
    )
    _connection_arguments(demo, None)
    demo.add_argument("--framework", choices=("flask", "pyramid", "beaker"), default="flask",
                      help="the adapter to demonstrate (default flask)")  # fmt: skip
    demo.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")

    default_uri = "mongodb://127.0.0.1:27017"
    stats = commands.add_parser("stats", help="entry counts, document sizes and indexes")
    _connection_arguments(stats, default_uri)
    _cleanup_argument(stats)
    stats.add_argument("--json", action="store_true", help="print JSON")

    ensure = commands.add_parser(
        "ensure-indexes",
        help="create or fix the indexes",
        description="Create or fix the indexes, for deployments whose application user may "
        "not create indexes.",
    )
    _connection_arguments(ensure, default_uri)
    _cleanup_argument(ensure)

    purge = commands.add_parser("purge-expired", help="delete expired entries now")
    _connection_arguments(purge, default_uri)
    return parser


def _manager(args: argparse.Namespace, **options: Any) -> MongoManager:
    # Maintenance may scan a large collection: a bounded wait for the server,
    # no limit on the work itself.
    wait = int(args.timeout * 1000)
    connection = {"serverSelectionTimeoutMS": wait, "connectTimeoutMS": wait, "socketTimeoutMS": 0}
    if "cleanup" in args:
        options.update(
            cleanup=args.cleanup,
            expires=args.expires,
            expire_after_seconds=args.expire_after_seconds,
        )
    return MongoManager(
        args.uri,
        database_name=args.database,
        collection=args.collection,
        connection_options=connection,
        **options,
    )


def _stats(args: argparse.Namespace) -> int:
    result = _manager(args).stats()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name, value in result.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{name.replace('_', ' ')}: {shown if shown != '' else 'none'}")
    return 0


def _ensure_indexes(args: argparse.Namespace) -> int:
    done = _manager(args).ensure_indexes()
    print("\n".join(done) if done else "indexes are already in place")
    return 0


def _purge_expired(args: argparse.Namespace) -> int:
    print(f"deleted {_manager(args).purge_expired()} expired entries")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from wsgiref.simple_server import make_server

    from .demo import make_app
    from .embedded import EmbeddedServer

    # Stop cleanly on SIGTERM too, so the embedded server is not left behind.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    server = None
    try:
        if args.uri is None:
            server = EmbeddedServer()
            server.start()
            args.uri = server.uri
            print(f"No --uri given: started the embedded MongoDB-compatible server at {server.uri}")
        manager = _manager(args)
        manager.ping(args.timeout)
        app = make_app(args.framework, manager)
        with make_server(args.host, args.port, app) as httpd:

            def stop(signum: int, frame: Any) -> None:
                # shutdown() waits for serve_forever(), so call it from a thread.
                threading.Thread(target=httpd.shutdown, daemon=True).start()

            signal.signal(signal.SIGTERM, stop)
            print(
                f"Serving the {args.framework} demo on http://{args.host}:{httpd.server_port}/ "
                f"with sessions in {mask_uri(args.uri)} (Ctrl+C to stop)",
                flush=True,
            )
            try:
                httpd.serve_forever()
            except KeyboardInterrupt:
                pass
    finally:
        if server is not None:
            server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    handlers = {
        "demo": _demo,
        "stats": _stats,
        "ensure-indexes": _ensure_indexes,
        "purge-expired": _purge_expired,
    }
    try:
        return handlers[args.command](args)
    except ServerUnavailable as exc:
        print(f"error: cannot reach MongoDB at {mask_uri(args.uri or '')}: {exc}", file=sys.stderr)
        return 2
    except MongoSessionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
