"""Run the benchmark: interleaved rounds, command counts, growth, threads.

``python -m bench`` starts a fresh embedded server (or uses ``--uri``), then
prints tables with ratios, and writes ``benchmark.json``, the figures
(``ceiling.png``, ``peers.png``, ``growth.png`` and their async twins
``async_*.png``) and ``figures.rst.inc`` to ``--out``. The sync and async
cases run in the same rounds, with shuffled turns, on the same server.
``--replot`` draws the figures and ``figures.rst.inc`` again from the
``benchmark.json`` already in ``--out``, without measuring.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib.metadata
import importlib.util
import json
import platform
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pymongo import MongoClient, monitoring

from mongo_session_backends import MongoManager
from mongo_session_backends.embedded import EmbeddedServer

from .async_cases import ASYNC_PEERS, OURS_ASYNC, TASKS
from .async_run import AsyncHalf
from .cases import (
    KEYS,
    OURS,
    PEER_BEAKER,
    PEER_CACHELIB,
    PEER_FLASK,
    PEERS,
    RAW,
    VALUE,
    Case,
    beaker_cases,
    flask_cases,
    our_cache_cases,
    peer_cachelib_cases,
    populate,
    pyramid_cases,
    raw_cases,
)
from .owner_cases import (
    OWNED,
    OWNED_LARGE,
    OWNERS,
    PER_OWNER,
    RAW_OFF,
    RAW_ON,
    WRITE_OFF_OP,
    WRITE_ON_OP,
    OwnedCollection,
    write_cases,
)
from .plot import write_figures

DATABASE = "bench"


class Counter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.count = 0
        self.enabled = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.enabled and event.command_name not in ("hello", "ismaster", "endSessions"):
            self.count += 1

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


def timed(run: Callable[[int], Any], seconds: float, start: int) -> tuple[int, float]:
    """Call ``run`` for about ``seconds`` (at least 3 calls); return calls and time."""
    n = 0
    began = time.perf_counter()
    while True:
        run(start + n)
        n += 1
        elapsed = time.perf_counter() - began
        if n >= 3 and elapsed >= seconds:
            return n, elapsed


def rounds(
    cases: list[Case], count: int, seconds: float, reset: bool = True, slices: int = 5
) -> dict[str, float]:
    """Median ops/s per case over ``count`` rounds.

    Each round gives every case ``seconds`` in ``slices`` turns, each turn in
    a new order, so drift of the machine within a round reaches every case.
    With ``reset``, the cases' reset hooks run after each round.
    """
    samples: dict[str, list[float]] = {c.name: [] for c in cases}
    for r in range(count):
        calls = dict.fromkeys(samples, 0)
        spent = dict.fromkeys(samples, 0.0)
        for turn in range(slices):
            # A new order for every turn, so no case always follows the same one.
            order = list(cases)
            random.Random(r * slices + turn).shuffle(order)
            for case in order:
                timer = case.timer or functools.partial(timed, case.run)
                n, elapsed = timer(seconds / slices, r * 100_000 + calls[case.name])
                calls[case.name] += n
                spent[case.name] += elapsed
        for case in cases:
            samples[case.name].append(calls[case.name] / spent[case.name])
        if reset:
            _reset(cases)
    return {name: statistics.median(values) for name, values in samples.items()}


def _reset(cases: list[Case]) -> None:
    for case in cases:
        if case.reset is not None:
            case.reset()


def commands_per_op(cases: list[Case], counter: Counter, calls: int = 20) -> dict[str, float]:
    """Commands per operation of each case with a client, over ``calls`` operations or more."""
    result = {}
    for case in cases:
        if case.client is None:
            continue
        runs = max(1, calls // case.per_call)
        for i in range(3 if case.per_call == 1 else 1):
            case.run(900_000 + i)  # warm up: indexes, first connection
        counter.count = 0
        counter.enabled = True
        for i in range(runs):
            case.run(800_000 + i)
        counter.enabled = False
        result[case.name] = counter.count / (runs * case.per_call)
    return result


def threaded(manager: MongoManager, threads: int, seconds: float) -> float:
    """Total get+set ops/s of ``threads`` threads sharing one manager."""
    from mongo_session_backends.cachelib import MongoDBCache

    cache = MongoDBCache(manager=manager)
    done = [0] * threads
    stop = threading.Event()

    def work(t: int) -> None:
        n = 0
        while not stop.is_set():
            key = f"t{t}-{n % 100}"
            cache.set(key, VALUE)
            cache.get(key)
            n += 2
        done[t] = n

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    began = time.perf_counter()
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - began)


def ratios(
    results: dict[str, float],
    cases: list[Case],
    ours: str = OURS,
    peers: Sequence[str] = PEERS,
) -> list[dict[str, Any]]:
    """One row per case: ops/s, ratio to its raw ceiling and, for ``ours``, to each peer."""
    rows = []
    for case in cases:
        ops = results[case.name]
        row: dict[str, Any] = {"system": case.system, "operation": case.operation, "ops": ops}
        if case.limit:
            ceiling = 1 / sum(1 / results[name] for name in case.limit)
            row["vs_ceiling"] = ops / ceiling
        if case.system == ours:
            for peer in peers:
                other = results.get(f"{peer}: {case.operation}")
                if other:
                    row[f"vs {peer}"] = ops / other
        rows.append(row)
    return rows


def versions() -> dict[str, str]:
    names = ["mongo-session-backends", "pymongo", "cachelib", "Flask", "Flask-Session",
             "Beaker", "pyramid", "litestar", "fastapi", "starsessions", "aiohttp",
             "aiohttp-session", "aiohttp-session-mongo", "Quart-Session", "motor",
             "Django", "SecantusDB"]  # fmt: skip
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def print_table(
    rows: list[dict[str, Any]], commands: dict[str, float], peers: Sequence[str] = PEERS
) -> None:
    peers_shown = [p for p in peers if any(f"vs {p}" in r for r in rows)]
    header = f"{'system':24} {'operation':30} {'ops/s':>9} {'cmds':>5} {'vs raw':>7}"
    header += "".join(f" {('vs ' + p.split()[0]):>14}" for p in peers_shown)
    print(header)
    print("-" * len(header))
    for row in rows:
        name = f"{row['system']}: {row['operation']}"
        cmds = commands.get(name)
        line = f"{row['system']:24} {row['operation']:30} {row['ops']:9.0f} "
        line += f"{cmds:5.1f}" if cmds is not None else f"{'':5}"
        line += f" {row['vs_ceiling']:6.2f}x" if "vs_ceiling" in row else f" {'':7}"
        for peer in peers_shown:
            value = row.get(f"vs {peer}")
            line += f" {value:13.1f}x" if value else f" {'':14}"
        print(line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--uri", help="benchmark this server (default: a fresh embedded one)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=0.5,
                        help="time per case per round (default 0.5)")  # fmt: skip
    parser.add_argument("--sizes", default="1000,100000",
                        help="our sizes for the growth test (default 1000,100000)")  # fmt: skip
    parser.add_argument("--peer-sizes", default="100,5000",
                        help="peer sizes for the growth test (default 100,5000)")  # fmt: skip
    parser.add_argument("--threads", default="1,4,16", help="thread counts (default 1,4,16)")
    parser.add_argument("--retry-writes", action="store_true", help="leave retryWrites on")
    parser.add_argument(
        "--out", default="bench-results", help="output folder (default bench-results)"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run, to check it works")
    parser.add_argument(
        "--replot",
        action="store_true",
        help="only draw the figures again from the benchmark.json in --out",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.replot:
        recorded = out / "benchmark.json"
        if not recorded.is_file():
            parser.error(f"--replot reads {recorded}, which does not exist")
        write_figures(json.loads(recorded.read_text()), out)
        print(f"drew the figures and figures.rst.inc again from {recorded}")
        return 0
    if args.quick:
        args.rounds, args.seconds, args.sizes, args.peer_sizes, args.threads = (
            1,
            0.02,
            "200,400",
            "50,100",
            "1,2",
        )
    sizes = [int(s) for s in args.sizes.split(",")]
    peer_sizes = [int(s) for s in args.peer_sizes.split(",")]
    out.mkdir(parents=True, exist_ok=True)

    server = None
    uri = args.uri
    if uri is None:
        server = EmbeddedServer().start()
        uri = server.uri
    options: dict[str, Any] = {"retryWrites": bool(args.retry_writes), "tz_aware": True}
    counter = Counter()
    half: AsyncHalf | None = None
    try:
        client: MongoClient[Any] = MongoClient(uri, event_listeners=[counter], **options)
        client.drop_database(DATABASE)
        base = uri.split("?")[0].rstrip("/")
        if base.count("/") > 2:
            base = base.rsplit("/", 1)[0]
        peer_client: MongoClient[Any] = MongoClient(
            f"{base}/{DATABASE}", event_listeners=[counter], **options
        )
        manager = MongoManager(client=client, database_name=DATABASE)
        sync_cases = [
            *raw_cases(client, DATABASE),
            *our_cache_cases(manager, client),
            *peer_cachelib_cases(client, DATABASE),
            *beaker_cases(manager, client, peer_client),
            *flask_cases(manager, client, DATABASE),
            *pyramid_cases(manager, client),
        ]
        owner_writes = write_cases(client, DATABASE)
        owned = OwnedCollection(client, DATABASE, OWNED, sizes[0]).cases(client)
        django = _django(uri, client, {**options, "event_listeners": [counter]}, sizes[0])
        sync_cases += owner_writes + owned + django
        half = AsyncHalf(uri, base, DATABASE, options, [counter], client)
        cases = sync_cases + half.cases
        for case in cases:
            case.run(0)  # connect, create indexes, create the counters
        for case in cases:
            if case.system in (OURS, RAW) and case.operation.endswith("set"):
                # store every key the reads will ask for
                for n in range(KEYS):
                    case.run(n)
        populate(client, DATABASE, sizes[0])
        _fill_peers(client, sizes[0])  # the peers start at the same size
        half.fill(sizes[0])
        print(
            f"server {uri}  client options {options} for every client (MongoClient, "
            f"AsyncMongoClient, Motor)  rounds {args.rounds}"
        )
        commands = commands_per_op(cases, counter)
        _reset(cases)  # every key the cases read is stored before the first round
        results = rounds(cases, args.rounds, args.seconds)
        rows = ratios(results, sync_cases)
        async_rows = ratios(results, half.cases, OURS_ASYNC, ASYNC_PEERS)
        async_systems = {case.system for case in half.cases}
        async_commands = {k: v for k, v in commands.items() if k.split(": ")[0] in async_systems}
        commands = {k: v for k, v in commands.items() if k not in async_commands}
        print(f"\n== {sizes[0]:,} documents in our collection ==")
        print_table(rows, commands)
        print(f"\n== async: {sizes[0]:,} documents, one at a time and {TASKS} tasks ==")
        print_table(async_rows, async_commands, ASYNC_PEERS)

        # Growth: the same cases on a second, larger collection, measured in
        # the same interleaved rounds as the first, so drift cancels out.
        growth: dict[str, float] = {}
        small = [c for c in cases if c.system in (OURS, RAW) and "request" not in c.operation]
        small = [c for c in small if "beaker" not in c.operation and c not in owner_writes]
        small = [c for c in small if c not in owned]
        populate(client, DATABASE, sizes[-1], "sessions_large")
        large_manager = MongoManager(
            client=client, database_name=DATABASE, collection="sessions_large"
        )
        large = [
            *raw_cases(client, DATABASE, "sessions_large"),
            *our_cache_cases(large_manager, client),
        ]
        async_small, async_large = half.growth(sizes[-1])
        small += async_small
        large += async_large
        for case in large:
            case.operation += " (large)"
            case.run(0)
        _reset(large)
        both = rounds(small + large, args.rounds, args.seconds)
        for case in small:
            label = f"{case.name} ({sizes[0]:,} to {sizes[-1]:,})"
            growth[label] = both[case.name] / both[f"{case.name} (large)"]
        # Listing and revoking: their own rounds, one turn per case per round
        # (a revoke's owner gets its sessions back, untimed, before each call).
        owned_large = OwnedCollection(client, DATABASE, OWNED_LARGE, sizes[-1]).cases(client)
        for case in owned_large:
            case.operation += " (large)"
        both = rounds(owned + owned_large, args.rounds, args.seconds, slices=1)
        for case in owned:
            label = f"{case.name} ({sizes[0]:,} to {sizes[-1]:,})"
            growth[label] = both[case.name] / both[f"{case.name} (large)"]
        peer_growth_cases = [
            c for c in cases if c.system in (PEER_CACHELIB, PEER_BEAKER, PEER_FLASK)
        ] + half.peer_cases
        # The peers' documents live in the collection under test, so their two
        # sizes run one after the other, each from an emptied collection.
        at_size = []
        for size in (peer_sizes[0], peer_sizes[-1]):
            _empty_peers(client)
            _fill_peers(client, size)
            half.refill_peers(size)
            at_size.append(rounds(peer_growth_cases, min(args.rounds, 3), args.seconds, False))
        for case in peer_growth_cases:
            label = f"{case.name} ({peer_sizes[0]:,} to {peer_sizes[-1]:,})"
            growth[label] = at_size[0][case.name] / at_size[1][case.name]
        print("\n== slowdown as the collection grows ==")
        for name, factor in growth.items():
            print(f"{name:60} {factor:6.2f}x")
        async_growth = {k: v for k, v in growth.items() if k.split(": ")[0] in async_systems}
        growth = {k: v for k, v in growth.items() if k not in async_growth}

        print("\n== threads sharing one manager (cache set+get) ==")
        scaling = {str(t): threaded(manager, t, max(args.seconds * 3, 0.1)) for t in
                   (int(n) for n in args.threads.split(","))}  # fmt: skip
        for t, ops in scaling.items():
            print(f"{t:>3} threads: {ops:8.0f} ops/s")

        owner = _owner_summary(results)
        engines = {c.name: results[c.name] for c in django if c.operation.endswith("request")}
        print("\n== log out everywhere ==")
        for name, value in owner.items():
            print(f"{name:60} {value:8.3f}")

        report = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "server": "embedded SecantusDB" if server else "given by --uri",
            "server_version": client.server_info().get("version"),
            "client_options": {k: v for k, v in options.items()},
            "versions": versions(),
            "machine": f"{platform.machine()}, {platform.system()}",
            "rounds": args.rounds,
            "seconds_per_case": args.seconds,
            "collection_sizes": sizes,
            "peer_sizes": peer_sizes,
            "value_bytes": len(json.dumps(VALUE)),
            "rows": rows,
            "commands_per_op": commands,
            "growth": growth,
            "threads": scaling,
            "owner": owner,
            "async": {
                "tasks": TASKS,
                "collection_sizes": sizes,
                "peer_sizes": peer_sizes,
                "rows": async_rows,
                "commands_per_op": async_commands,
                "growth": async_growth,
            },
        }
        if engines:
            report["django"] = {"requests": engines}
        (out / "benchmark.json").write_text(json.dumps(report, indent=2))
        write_figures(report, out)
        print(f"\nwrote benchmark.json, the figures and figures.rst.inc to {out}")
        client.close()
        peer_client.close()
    finally:
        if half is not None:
            half.close()
        if server is not None:
            server.stop()
    return 0


def _django(
    uri: str, client: MongoClient[Any], connection_options: dict[str, Any], size: int
) -> list[Case]:
    """The Django request cases, if Django is installed: Django is configured here, once."""
    if importlib.util.find_spec("django") is None:
        return []
    from .django_cases import COLLECTION, configure, django_cases

    configure(uri, DATABASE, connection_options)
    populate(client, DATABASE, size, COLLECTION)  # as many documents as our other collections
    return django_cases(client, DATABASE)


def _owner_summary(results: dict[str, float]) -> dict[str, float]:
    """The owner write's cost over a plain write, ours and raw; the sizes of the listing test."""
    ours_on, ours_off = results[f"{OURS}: {WRITE_ON_OP}"], results[f"{OURS}: {WRITE_OFF_OP}"]
    raw_on = results[f"{RAW}: {RAW_ON}"]
    raw_off = results[f"{RAW}: {RAW_OFF}"]
    return {
        "owners": OWNERS,
        "sessions_per_owner": PER_OWNER,
        "write_cost_ours": ours_off / ours_on,
        "write_cost_raw": raw_off / raw_on,
    }


PEER_COLLECTIONS = ("cachelib_peer", "backer_cache", "flask_peer")


def _empty_peers(client: MongoClient[Any]) -> None:
    """Remove every document from the peers' collections; their indexes stay."""
    for name in PEER_COLLECTIONS:
        client[DATABASE][name].delete_many({})


def _fill_peers(client: MongoClient[Any], total: int) -> None:
    """Grow each peer's collection to ``total`` live documents, in its own shape."""
    db = client[DATABASE]
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    shapes: dict[str, Callable[[int], dict[str, Any]]] = {
        "cachelib_peer": lambda n: {"id": f"fill{n}", "value": b"x" * 200, "expiration": later},
        "backer_cache": lambda n: {
            "_id": f"bench:fill{n}",
            "value": b"x" * 200,
            "expiration": None,
        },
        "flask_peer": lambda n: {"id": f"session:fill{n}", "val": b"x" * 200, "expiration": later},
    }
    for name, shape in shapes.items():
        have = db[name].count_documents({})
        if total > have:
            db[name].insert_many([shape(n) for n in range(have, total)], ordered=False)
