"""Run the benchmark: interleaved rounds, command counts, growth, threads.

``python -m bench`` starts a fresh embedded server (or uses ``--uri``), then
prints a table with ratios, and writes ``benchmark.json``, the figures
(``ceiling.png``, ``peers.png``, ``growth.png``) and ``figures.rst.inc`` to
``--out``. ``--replot`` draws the figures and ``figures.rst.inc`` again from
the ``benchmark.json`` already in ``--out``, without measuring.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
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

from .cases import (
    KEYS,
    OURS,
    PEER_BEAKER,
    PEER_CACHELIB,
    PEER_FLASK,
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

PEERS = (PEER_CACHELIB, PEER_BEAKER, PEER_FLASK)
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
                n, elapsed = timed(case.run, seconds / slices, r * 100_000 + calls[case.name])
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
    result = {}
    for case in cases:
        if case.client is None:
            continue
        for i in range(3):
            case.run(900_000 + i)  # warm up: indexes, first connection
        counter.count = 0
        counter.enabled = True
        for i in range(calls):
            case.run(800_000 + i)
        counter.enabled = False
        result[case.name] = counter.count / calls
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


def ratios(results: dict[str, float], cases: list[Case]) -> list[dict[str, Any]]:
    """One row per case: ops/s, ratio to its raw ceiling and to each peer."""
    rows = []
    for case in cases:
        ops = results[case.name]
        row: dict[str, Any] = {"system": case.system, "operation": case.operation, "ops": ops}
        if case.limit:
            ceiling = 1 / sum(1 / results[name] for name in case.limit)
            row["vs_ceiling"] = ops / ceiling
        if case.system == OURS:
            for peer in PEERS:
                other = results.get(f"{peer}: {case.operation}")
                if other:
                    row[f"vs {peer}"] = ops / other
        rows.append(row)
    return rows


def versions() -> dict[str, str]:
    names = ["mongo-session-backends", "pymongo", "cachelib", "Flask", "Flask-Session",
             "Beaker", "pyramid", "SecantusDB"]  # fmt: skip
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def print_table(rows: list[dict[str, Any]], commands: dict[str, float]) -> None:
    peers_shown = [p for p in PEERS if any(f"vs {p}" in r for r in rows)]
    header = f"{'system':24} {'operation':26} {'ops/s':>9} {'cmds':>5} {'vs raw':>7}"
    header += "".join(f" {('vs ' + p.split()[0]):>14}" for p in peers_shown)
    print(header)
    print("-" * len(header))
    for row in rows:
        name = f"{row['system']}: {row['operation']}"
        cmds = commands.get(name)
        line = f"{row['system']:24} {row['operation']:26} {row['ops']:9.0f} "
        line += f"{cmds:5.1f}" if cmds is not None else f"{'':5}"
        line += f" {row['vs_ceiling']:6.2f}x" if "vs_ceiling" in row else f" {'':7}"
        for peer in peers_shown:
            value = row.get(f"vs {peer}")
            line += f" {value:13.1f}x" if value else f" {'':14}"
        print(line)


#: The figures ``plot`` draws, by file stem: their alt text and caption.
FIGURES = {
    "ceiling": (
        "our operations per second divided by raw pymongo's, for each operation",
        "Our operations per second divided by raw pymongo's sending the same commands, at "
        "{small:,} documents: 1.0 is the ceiling. A request's ceiling also counts the "
        "framework's own time with its cookie session.",
    ),
    "peers": (
        "operations per second of ours and of each peer, for each operation they share",
        "Operations per second of ours and of each peer, at {small:,} documents (log scale). "
        "The label on each of our bars gives ours divided by the peer's.",
    ),
    "growth": (
        "slowdown of each operation as the collection grows, ours, raw pymongo and the peers",
        "Slowdown as the collection grows: operations per second at the small size divided "
        "by those at the large size (log scale; 1.0 is flat), from {small:,} to {large:,} "
        "documents for ours and raw pymongo, from {peer_small:,} to {peer_large:,} for the "
        "peers.",
    ),
}
COLORS = {OURS: "C0", RAW: "C1", PEER_CACHELIB: "C2", PEER_BEAKER: "C3", PEER_FLASK: "C4"}
WIDTH = 6.5  # inches: at the page width, the text in a figure reads like the page's
BAR = 0.32  # inches of height per bar


def _size(a: int, b: int) -> str:
    return f"{a:,} to {b:,} documents"


def _title_and_legend(ax: Any, title: str, columns: int) -> None:
    """The legend right above the chart, within its width, and the title above both."""
    entries = len(ax.get_legend_handles_labels()[1])
    rows = -(-entries // columns)
    ax.legend(
        loc="lower left", bbox_to_anchor=(0, 1.0, 1, 0), mode="expand", ncol=columns,
        frameon=False, fontsize=9, borderaxespad=0.3, handlelength=1.5,
    )  # fmt: skip
    ax.set_title(title, pad=8 + 17 * rows)


def _plot_ceiling(plt: Any, report: dict[str, Any]) -> Any:
    """Ours divided by raw pymongo's ceiling, one bar per operation."""
    rows = [r for r in report["rows"] if r["system"] == OURS and "vs_ceiling" in r]
    fig, ax = plt.subplots(figsize=(WIDTH, 1.8 + BAR * len(rows)))
    labels = [r["operation"] for r in rows]
    values = [r["vs_ceiling"] for r in rows]
    right = max(1.3, max(values) + 0.2)
    ax.axvspan(0.9, 1.1, color="0.88", label="run-to-run noise (about ±10%)")
    ax.barh(labels, values, color=COLORS[OURS], label="ours ÷ raw pymongo")
    ax.axvline(1.0, color="black", linewidth=1.2, label="raw pymongo = 1.0 (the ceiling)")
    for y, value in enumerate(values):
        ax.text(right - 0.02, y, f"{value:.2f}", ha="right", va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, right)
    ax.set_xlabel("ours ÷ raw pymongo sending the same commands (higher is better)")
    title = f"Ours against its raw ceiling, {report['collection_sizes'][0]:,} documents"
    _title_and_legend(ax, title, 2)
    return fig


def _plot_peers(plt: Any, report: dict[str, Any]) -> Any:
    """Ours and the peer, side by side on a log scale, per shared operation."""
    ops = {(r["system"], r["operation"]): r["ops"] for r in report["rows"]}
    pairs = [
        (r["operation"], peer, r[f"vs {peer}"])
        for r in report["rows"]
        if r["system"] == OURS
        for peer in PEERS
        if r.get(f"vs {peer}")
    ]
    fig, ax = plt.subplots(figsize=(WIDTH, 1.8 + 1.6 * BAR * len(pairs)))
    height = 0.4
    shown: set[str] = set()
    for n, (operation, peer, ratio) in enumerate(pairs):
        for system, offset in ((OURS, -height / 2), (peer, height / 2)):
            value = ops[(system, operation)]
            label = system if system not in shown else None
            shown.add(system)
            bar = ax.barh(n + offset, value, height, color=COLORS[system], label=label)
            text = f"{value:,.0f}/s"
            if system == OURS:
                text += f", {ratio:.0f}x the peer" if ratio >= 10 else f", {ratio:.1f}x the peer"
            ax.bar_label(bar, labels=[text], padding=3, fontsize=9)
    ax.set_yticks(range(len(pairs)), [operation for operation, _, _ in pairs])
    ax.set_ylim(len(pairs) - 0.5, -0.5)
    ax.set_xscale("log")
    ax.set_xlim(5, max(ops[(OURS, operation)] for operation, _, _ in pairs) * 20)
    ax.set_xlabel("operations per second, log scale (higher is better)")
    _title_and_legend(ax, f"Ours and the peers, {report['collection_sizes'][0]:,} documents", 2)
    return fig


def _plot_growth(plt: Any, report: dict[str, Any]) -> Any:
    """Slowdown per operation: ours and raw pymongo, then the peers."""
    sizes, peer_sizes = report["collection_sizes"], report["peer_sizes"]
    mine: dict[str, dict[str, float]] = {}
    theirs: dict[str, dict[str, float]] = {}
    for name, factor in report["growth"].items():
        system, rest = name.split(": ", 1)
        operation = rest.rsplit(" (", 1)[0]
        panel = mine if system in (OURS, RAW) else theirs
        panel.setdefault(operation, {})[system] = factor
    # ours first, then its raw ceiling
    mine = {op: dict(sorted(v.items(), key=lambda item: item[0] != OURS)) for op, v in mine.items()}
    count = [sum(len(v) for v in panel.values()) for panel in (mine, theirs)]
    fig, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(WIDTH, 3.6 + 0.24 * sum(count)),
        gridspec_kw={"height_ratios": count},
    )  # fmt: skip
    for ax, panel, title in (
        (top, mine, f"Ours and raw pymongo, {_size(sizes[0], sizes[-1])}"),
        (bottom, theirs, f"The peers, {_size(peer_sizes[0], peer_sizes[-1])}"),
    ):
        shown: set[str] = set()
        for n, by_system in enumerate(panel.values()):
            height = 0.8 / len(by_system)
            for m, (system, factor) in enumerate(by_system.items()):
                y = n - 0.4 + height * (m + 0.5)
                label = system if system not in shown else None
                shown.add(system)
                ax.barh(y, factor, height, color=COLORS[system], label=label)
                ax.text(max(factor, 1.0) * 1.12, y, f"{factor:.1f}x", va="center", fontsize=9)
        ax.axvline(1.0, color="black", linewidth=1.2, label="no slowdown = 1.0")
        ax.set_yticks(range(len(panel)), list(panel))
        ax.set_ylim(len(panel) - 0.5, -0.5)
        _title_and_legend(ax, title, 2)
    bottom.set_xscale("log")
    bottom.set_xlim(0.5, max(report["growth"].values()) * 3)
    bottom.set_xlabel("slowdown, log scale (1.0 is flat; lower is better)")
    top.tick_params(labelbottom=True)
    return fig


def plot(report: dict[str, Any], out: Path) -> list[Path]:
    """Draw the figures of ``report`` as PNG files in ``out``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawings = {"ceiling": _plot_ceiling, "peers": _plot_peers, "growth": _plot_growth}
    paths = []
    for name in FIGURES:
        fig = drawings[name](plt, report)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def server_name(report: dict[str, Any]) -> str:
    """Which server ``report`` was measured on, as the docs say it."""
    if report["server"] == "embedded SecantusDB":
        return f"the embedded SecantusDB test server (reporting version {report['server_version']})"
    return f"the server given by ``--uri`` (reporting version {report['server_version']})"


def write_rst(report: dict[str, Any], path: Path) -> None:
    """The figures and tables as reStructuredText, for the docs to include.

    Each figure links to its full-size image; its caption says which server
    it was measured on.
    """
    sizes, peer_sizes = report["collection_sizes"], report["peer_sizes"]
    numbers = {
        "small": sizes[0],
        "large": sizes[-1],
        "peer_small": peer_sizes[0],
        "peer_large": peer_sizes[-1],
    }
    lines = [
        f"Run on {report['date']} against {server_name(report)}, "
        f"client options ``{report['client_options']}``, {report['rounds']} interleaved rounds "
        f"of {report['seconds_per_case']} s per case, median shown. Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + ". Select a figure to open it at full size.",
        "",
    ]
    for name, (alt, caption) in FIGURES.items():
        lines += [
            f".. figure:: bench/{name}.png",
            f"   :alt: {alt}",
            "   :width: 100%",
            f"   :target: _images/{name}.png",
            "",
            f"   {caption.format(**numbers)} Measured on {server_name(report)}.",
            "",
        ]
    lines += [
        f".. list-table:: Operations per second at {report['collection_sizes'][0]:,} documents",
        "   :header-rows: 1",
        "",
        "   * - system",
        "     - operation",
        "     - ops/s",
        "     - commands per op",
        "     - vs its raw ceiling",
        "     - vs the peer",
    ]
    for row in report["rows"]:
        name = f"{row['system']}: {row['operation']}"
        peer = next((f"{v:.1f}x {k[3:]}" for k, v in row.items() if k.startswith("vs ") and v), "")
        commands = report["commands_per_op"].get(name)
        lines += [
            f"   * - {row['system']}",
            f"     - {row['operation']}",
            f"     - {row['ops']:.0f}",
            f"     - {commands:.1f}" if commands is not None else "     -",
            f"     - {row['vs_ceiling']:.2f}x" if "vs_ceiling" in row else "     -",
            f"     - {peer}" if peer else "     -",
        ]
    lines += ["", ".. list-table:: Slowdown as the collection grows", "   :header-rows: 1", "",
              "   * - case", "     - slowdown"]  # fmt: skip
    for name, factor in report["growth"].items():
        lines += [f"   * - {name}", f"     - {factor:.2f}x"]
    lines += ["", ".. list-table:: Threads sharing one manager (cache set and get)",
              "   :header-rows: 1", "", "   * - threads", "     - ops/s"]  # fmt: skip
    for threads, ops in report["threads"].items():
        lines += [f"   * - {threads}", f"     - {ops:.0f}"]
    path.write_text("\n".join(lines) + "\n")


def write_figures(report: dict[str, Any], out: Path) -> None:
    """Draw the figures of ``report`` and the page part that shows them, in ``out``."""
    plot(report, out)
    write_rst(report, out / "figures.rst.inc")


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
        cases = [
            *raw_cases(client, DATABASE),
            *our_cache_cases(manager, client),
            *peer_cachelib_cases(client, DATABASE),
            *beaker_cases(manager, client, peer_client),
            *flask_cases(manager, client, DATABASE),
            *pyramid_cases(manager, client),
        ]
        for case in cases:
            case.run(0)  # connect, create indexes, create the counters
        for case in cases:
            if case.system in (OURS, RAW) and case.operation.endswith("set"):
                # store every key the reads will ask for
                for n in range(KEYS):
                    case.run(n)
        populate(client, DATABASE, sizes[0])
        _fill_peers(client, sizes[0])  # the peers start at the same size
        print(f"server {uri}  client options {options}  rounds {args.rounds}")
        commands = commands_per_op(cases, counter)
        _reset(cases)  # every key the cases read is stored before the first round
        results = rounds(cases, args.rounds, args.seconds)
        rows = ratios(results, cases)
        print(f"\n== {sizes[0]:,} documents in our collection ==")
        print_table(rows, commands)

        # Growth: the same cases on a second, larger collection, measured in
        # the same interleaved rounds as the first, so drift cancels out.
        growth: dict[str, float] = {}
        small = [c for c in cases if c.system in (OURS, RAW) and "request" not in c.operation]
        small = [c for c in small if "beaker" not in c.operation]
        populate(client, DATABASE, sizes[-1], "sessions_large")
        large_manager = MongoManager(
            client=client, database_name=DATABASE, collection="sessions_large"
        )
        large = [
            *raw_cases(client, DATABASE, "sessions_large"),
            *our_cache_cases(large_manager, client),
        ]
        for case in large:
            case.operation += " (large)"
            case.run(0)
        _reset(large)
        both = rounds(small + large, args.rounds, args.seconds)
        for case in small:
            label = f"{case.name} ({sizes[0]:,} to {sizes[-1]:,})"
            growth[label] = both[case.name] / both[f"{case.name} (large)"]
        peer_growth_cases = [
            c for c in cases if c.system in (PEER_CACHELIB, PEER_BEAKER, PEER_FLASK)
        ]
        # The peers' documents live in the collection under test, so their two
        # sizes run one after the other, each from an emptied collection.
        at_size = []
        for size in (peer_sizes[0], peer_sizes[-1]):
            _empty_peers(client)
            _fill_peers(client, size)
            at_size.append(rounds(peer_growth_cases, min(args.rounds, 3), args.seconds, False))
        for case in peer_growth_cases:
            label = f"{case.name} ({peer_sizes[0]:,} to {peer_sizes[-1]:,})"
            growth[label] = at_size[0][case.name] / at_size[1][case.name]
        print("\n== slowdown as the collection grows ==")
        for name, factor in growth.items():
            print(f"{name:60} {factor:6.2f}x")

        print("\n== threads sharing one manager (cache set+get) ==")
        scaling = {str(t): threaded(manager, t, max(args.seconds * 3, 0.1)) for t in
                   (int(n) for n in args.threads.split(","))}  # fmt: skip
        for t, ops in scaling.items():
            print(f"{t:>3} threads: {ops:8.0f} ops/s")

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
        }
        (out / "benchmark.json").write_text(json.dumps(report, indent=2))
        write_figures(report, out)
        print(f"\nwrote benchmark.json, the figures and figures.rst.inc to {out}")
        client.close()
        peer_client.close()
    finally:
        if server is not None:
            server.stop()
    return 0


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
