"""The benchmark's figures and the page part that shows them, from a report.

A report is what ``benchmark.json`` holds. The sync figures read its
top-level ``rows`` and ``growth``; the async figures read the same keys
under ``"async"``, drawn by the same functions (a :class:`Side` names the
systems of each half). A report without ``"async"`` draws the sync
figures alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .async_cases import ASYNC_PEERS, OURS_ASYNC, PEER_AIOHTTP, PEER_QUART, RAW_ASYNC, TASKS
from .cases import OURS, PEER_BEAKER, PEER_CACHELIB, PEER_FLASK, PEERS, RAW


@dataclass(frozen=True)
class Side:
    """One half of the benchmark: where its results are in a report, and its systems.

    :param key: the report key holding this half's results (``None``: the top level).
    :param ours: our system's name; ``raw``: its raw ceiling's; ``peers``: the peers'.
    :param title: how titles name our side.
    """

    key: str | None
    ours: str
    raw: str
    peers: tuple[str, ...]
    title: str

    def of(self, report: dict[str, Any]) -> dict[str, Any]:
        """``report`` with this half's results at the top level."""
        return report if self.key is None else {**report, **report[self.key]}


SYNC = Side(None, OURS, RAW, PEERS, "Ours")
ASYNC = Side("async", OURS_ASYNC, RAW_ASYNC, ASYNC_PEERS, "Ours (async)")
#: The Django requests: drawn when a report has them (under ``"django"``).
DJANGO = Side("django", OURS, RAW, (), "Ours (Django)")

#: The figures ``plot`` draws, by file stem: their alt text, caption and half.
FIGURES = {
    "ceiling": (
        "our operations per second divided by raw pymongo's, for each operation",
        "Our operations per second divided by raw pymongo's sending the same commands, at "
        "{small:,} documents: 1.0 is the ceiling. A request's ceiling also counts the "
        "framework's own time with its cookie session.",
        SYNC,
    ),
    "peers": (
        "operations per second of ours and of each peer, for each operation they share",
        "Operations per second of ours and of each peer, at {small:,} documents (log scale). "
        "The label on each of our bars gives ours divided by the peer's.",
        SYNC,
    ),
    "growth": (
        "slowdown of each operation as the collection grows, ours, raw pymongo and the peers",
        "Slowdown as the collection grows: operations per second at the small size divided "
        "by those at the large size (log scale; 1.0 is flat), from {small:,} to {large:,} "
        "documents for ours and raw pymongo, from {peer_small:,} to {peer_large:,} for the "
        "peers.",
        SYNC,
    ),
    "async_ceiling": (
        "our async operations per second divided by raw AsyncMongoClient's, for each operation",
        "Our AsyncMongoManager's operations per second divided by raw AsyncMongoClient's "
        "sending the same commands, at {small:,} documents, one operation at a time and from "
        f"{TASKS} concurrent tasks: 1.0 is the ceiling. A request's ceiling is one raw find, "
        "one raw write and the same request with the framework's cookie-only session, their "
        "times added.",
        ASYNC,
    ),
    "async_peers": (
        "operations per second of our async stores and of each async peer",
        "Operations per second of ours (async) and of each async peer on Motor, at {small:,} "
        "documents (log scale). The label on each of our bars gives ours divided by the "
        "peer's.",
        ASYNC,
    ),
    "async_growth": (
        "slowdown of each async operation as the collection grows, ours, raw and the peers",
        "Slowdown of the async operations as the collection grows (log scale; 1.0 is flat), "
        "from {small:,} to {large:,} documents for ours and raw AsyncMongoClient, from "
        "{peer_small:,} to {peer_large:,} for the async peers.",
        ASYNC,
    ),
    "django": (
        "requests per second of a Django view with our session engine, its limit and "
        "Django's own engines",
        "Requests per second of one Django view (load the session, change it, save it) "
        "through Django's test client, at {small:,} documents: our engine, its limit (one raw "
        "find and one raw write on the engine's collection and the same request on Django's "
        "signed-cookie engine, their times added), and Django's own engines as reference "
        "points: ``db`` on SQLite (a file in a temporary folder), ``file`` and ``cache`` over "
        "locmem.",
        DJANGO,
    ),
}
COLORS = {OURS: "C0", RAW: "C1", PEER_CACHELIB: "C2", PEER_BEAKER: "C3", PEER_FLASK: "C4",
          OURS_ASYNC: "C0", RAW_ASYNC: "C1", PEER_AIOHTTP: "C5", PEER_QUART: "C6"}  # fmt: skip
WIDTH = 6.5  # inches: at the page width, the text in a figure reads like the page's
BAR = 0.32  # inches of height per bar


def _size(a: int, b: int) -> str:
    return f"{a:,} to {b:,} documents"


def _title_and_legend(ax: Any, title: str, columns: int) -> None:
    """The legend right above the chart, within its width, and the title above both.

    Labels too long to share a row get one each.
    """
    labels = ax.get_legend_handles_labels()[1]
    if max(map(len, labels), default=0) > 30:
        columns = 1
    rows = -(-len(labels) // columns)
    ax.legend(
        loc="lower left", bbox_to_anchor=(0, 1.0, 1, 0), mode="expand", ncol=columns,
        frameon=False, fontsize=9, borderaxespad=0.3, handlelength=1.5,
    )  # fmt: skip
    ax.set_title(title, pad=8 + 17 * rows)


def _plot_ceiling(plt: Any, report: dict[str, Any], side: Side) -> Any:
    """Ours divided by its raw ceiling, one bar per operation."""
    rows = [r for r in report["rows"] if r["system"] == side.ours and "vs_ceiling" in r]
    fig, ax = plt.subplots(figsize=(WIDTH, 1.8 + BAR * len(rows)))
    labels = [r["operation"] for r in rows]
    values = [r["vs_ceiling"] for r in rows]
    right = max(1.3, max(values) + 0.2)
    ax.axvspan(0.9, 1.1, color="0.88", label="run-to-run noise (about ±10%)")
    ax.barh(labels, values, color=COLORS[side.ours], label=f"ours ÷ {side.raw}")
    ax.axvline(1.0, color="black", linewidth=1.2, label=f"{side.raw} = 1.0 (the ceiling)")
    for y, value in enumerate(values):
        ax.text(right - 0.02, y, f"{value:.2f}", ha="right", va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, right)
    ax.set_xlabel(f"ours ÷ {side.raw} sending the same commands (higher is better)")
    title = f"{side.title} against its raw ceiling, {report['collection_sizes'][0]:,} documents"
    _title_and_legend(ax, title, 2)
    return fig


def _plot_peers(plt: Any, report: dict[str, Any], side: Side) -> Any:
    """Ours and the peer, side by side on a log scale, per shared operation."""
    ops = {(r["system"], r["operation"]): r["ops"] for r in report["rows"]}
    pairs = [
        (r["operation"], peer, r[f"vs {peer}"])
        for r in report["rows"]
        if r["system"] == side.ours
        for peer in side.peers
        if r.get(f"vs {peer}")
    ]
    fig, ax = plt.subplots(figsize=(WIDTH, 1.8 + 1.6 * BAR * max(1, len(pairs))))
    height = 0.4
    shown: set[str] = set()
    for n, (operation, peer, ratio) in enumerate(pairs):
        for system, offset in ((side.ours, -height / 2), (peer, height / 2)):
            value = ops[(system, operation)]
            label = system if system not in shown else None
            shown.add(system)
            bar = ax.barh(n + offset, value, height, color=COLORS[system], label=label)
            text = f"{value:,.0f}/s"
            if system == side.ours:
                text += f", {ratio:.0f}x the peer" if ratio >= 10 else f", {ratio:.1f}x the peer"
            ax.bar_label(bar, labels=[text], padding=3, fontsize=9)
    ax.set_yticks(range(len(pairs)), [operation for operation, _, _ in pairs])
    ax.set_ylim(len(pairs) - 0.5, -0.5)
    ax.set_xscale("log")
    ax.set_xlim(5, max([ops[(side.ours, operation)] for operation, _, _ in pairs] or [5]) * 20)
    ax.set_xlabel("operations per second, log scale (higher is better)")
    title = f"{side.title} and the peers, {report['collection_sizes'][0]:,} documents"
    _title_and_legend(ax, title, 2)
    return fig


def _plot_growth(plt: Any, report: dict[str, Any], side: Side) -> Any:
    """Slowdown per operation: ours and its raw ceiling, then the peers."""
    from matplotlib import ticker

    sizes, peer_sizes = report["collection_sizes"], report["peer_sizes"]
    mine: dict[str, dict[str, float]] = {}
    theirs: dict[str, dict[str, float]] = {}
    for name, factor in report["growth"].items():
        system, rest = name.split(": ", 1)
        operation = rest.rsplit(" (", 1)[0]
        panel = mine if system in (side.ours, side.raw) else theirs
        panel.setdefault(operation, {})[system] = factor
    # ours first, then its raw ceiling
    mine = {
        op: dict(sorted(v.items(), key=lambda item: item[0] != side.ours)) for op, v in mine.items()
    }
    panels = [
        (panel, title)
        for panel, title in (
            (mine, f"{side.title} and {side.raw}, {_size(sizes[0], sizes[-1])}"),
            (theirs, f"The peers, {_size(peer_sizes[0], peer_sizes[-1])}"),
        )
        if panel
    ]
    count = [sum(len(v) for v in panel.values()) for panel, _ in panels]
    fig, axes = plt.subplots(
        len(panels), 1, sharex=True, figsize=(WIDTH, 1.8 * len(panels) + 0.24 * sum(count)),
        gridspec_kw={"height_ratios": count}, squeeze=False,
    )  # fmt: skip
    axes = [row[0] for row in axes]
    for ax, (panel, title) in zip(axes, panels, strict=True):
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
        ax.tick_params(labelbottom=True)
    bottom = axes[-1]
    bottom.set_xscale("log")
    bottom.set_xlim(0.5, max(report["growth"].values()) * 3)
    for ax in axes:  # 0.5, 1, 2, 5 ... as plain numbers, on short ranges too
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    bottom.set_xlabel("slowdown, log scale (1.0 is flat; lower is better)")
    return fig


def _plot_django(plt: Any, report: dict[str, Any], side: Side) -> Any:
    """Requests per second of each Django engine, ours and its limit first."""
    requests = dict(report["requests"])
    row = next(r for r in report["rows"] if r["operation"] == "django request")
    ours = requests.pop(f"{side.ours}: django request")
    bars = [("ours", ours, COLORS[side.ours]),
            ("its limit", ours / row["vs_ceiling"], COLORS[side.raw])]  # fmt: skip
    bars += [(name.split(": ")[0], ops, "0.6") for name, ops in requests.items()]
    fig, ax = plt.subplots(figsize=(WIDTH, 1.8 + BAR * len(bars)))
    for y, (label, ops, color) in enumerate(bars):
        ax.barh(y, ops, color=color)
        text = f"{ops:,.0f}/s"
        if label == "ours":
            text += f", {row['vs_ceiling']:.2f}x its limit"
        ax.text(ops * 1.02, y, text, va="center", fontsize=9)
    ax.set_yticks(range(len(bars)), [label for label, _, _ in bars])
    ax.set_ylim(len(bars) - 0.5, -0.5)
    ax.set_xlim(0, max(ops for _, ops, _ in bars) * 1.45)
    ax.set_xlabel("requests per second (higher is better)")
    ax.set_title(
        f"A Django request, by session engine, {report['collection_sizes'][0]:,} documents"
    )
    return fig


DRAWINGS = {"ceiling": _plot_ceiling, "peers": _plot_peers, "growth": _plot_growth,
            "django": _plot_django}  # fmt: skip


def figures(report: dict[str, Any]) -> list[str]:
    """The figures ``report`` has results for: the async ones only if it has an async half."""
    return [name for name, (*_, side) in FIGURES.items() if side.key is None or side.key in report]


def plot(report: dict[str, Any], out: Path) -> list[Path]:
    """Draw the figures of ``report`` as PNG files in ``out``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for name in figures(report):
        side = FIGURES[name][2]
        fig = DRAWINGS[name.removeprefix("async_")](plt, side.of(report), side)
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


def _results(half: dict[str, Any], title: str, growth: str) -> list[str]:
    """The tables of one half: operations per second, and slowdown as the collection grows."""
    lines = [
        "",
        f".. list-table:: {title} at {half['collection_sizes'][0]:,} documents",
        "   :header-rows: 1",
        "",
        "   * - system",
        "     - operation",
        "     - ops/s",
        "     - commands per op",
        "     - vs its raw ceiling",
        "     - vs the peer",
    ]
    for row in half["rows"]:
        name = f"{row['system']}: {row['operation']}"
        peer = next((f"{v:.1f}x {k[3:]}" for k, v in row.items() if k.startswith("vs ") and v), "")
        commands = half["commands_per_op"].get(name)
        lines += [
            f"   * - {row['system']}",
            f"     - {row['operation']}",
            f"     - {row['ops']:.0f}",
            f"     - {commands:.1f}" if commands is not None else "     -",
            f"     - {row['vs_ceiling']:.2f}x" if "vs_ceiling" in row else "     -",
            f"     - {peer}" if peer else "     -",
        ]
    lines += ["", f".. list-table:: {growth}",
              "   :header-rows: 1", "", "   * - case", "     - slowdown"]  # fmt: skip
    for name, factor in half["growth"].items():
        lines += [f"   * - {name}", f"     - {factor:.2f}x"]
    return lines


def _owner_table(report: dict[str, Any]) -> list[str]:
    """Log out everywhere: a write's cost with ``owner_key``, and listing and revoking."""
    if "owner" not in report:
        return []
    owner, growth = report["owner"], report["growth"]
    lines = ["", ".. list-table:: Log out everywhere", "   :header-rows: 1", "",
             "   * - measure", "     - value",
             "   * - a session write with ``owner_key`` on: our time per write over off",
             f"     - {owner['write_cost_ours']:.2f}x",
             "   * - the same two commands from raw pymongo (pipeline ``update_one`` over "
             "``replace_one``)",
             f"     - {owner['write_cost_raw']:.2f}x"]  # fmt: skip
    for name, factor in growth.items():
        if "owner " in name and name.startswith(f"{OURS}: "):
            sessions = f"{owner['owners']} owners of {owner['sessions_per_owner']} sessions"
            lines += [f"   * - slowdown of {name[len(OURS) + 2 :]} with {sessions}",
                      f"     - {factor:.2f}x"]  # fmt: skip
    return lines


def _django_table(report: dict[str, Any]) -> list[str]:
    """Requests per second of each Django session engine."""
    if "django" not in report:
        return []
    lines = ["", ".. list-table:: A Django request, by session engine", "   :header-rows: 1",
             "", "   * - engine", "     - requests/s"]  # fmt: skip
    for name, ops in report["django"]["requests"].items():
        engine = "ours (mongo_session_backends.django.session)" if name.startswith(OURS) else name
        lines += [f"   * - {engine}", f"     - {ops:.0f}"]
    return lines


def write_rst(report: dict[str, Any], path: Path) -> None:
    """The figures and tables as reStructuredText, for the docs to include.

    Each figure links to its full-size image; its caption says which server
    it was measured on.
    """
    lines = [
        f"Run on {report['date']} against {server_name(report)}, "
        f"client options ``{report['client_options']}`` for every client, {report['rounds']} "
        f"interleaved rounds of {report['seconds_per_case']} s per case, median shown. "
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items())
        + ". Select a figure to open it at full size.",
        "",
    ]
    for name in figures(report):
        alt, caption, side = FIGURES[name]
        half = side.of(report)
        sizes, peer_sizes = half["collection_sizes"], half["peer_sizes"]
        numbers = {"small": sizes[0], "large": sizes[-1], "peer_small": peer_sizes[0],
                   "peer_large": peer_sizes[-1]}  # fmt: skip
        lines += [
            f".. figure:: bench/{name}.png",
            f"   :alt: {alt}",
            "   :width: 100%",
            f"   :target: _images/{name}.png",
            "",
            f"   {caption.format(**numbers)} Measured on {server_name(report)}.",
            "",
        ]
    lines += _results(report, "Operations per second", "Slowdown as the collection grows")[1:]
    lines += ["", ".. list-table:: Threads sharing one manager (cache set and get)",
              "   :header-rows: 1", "", "   * - threads", "     - ops/s"]  # fmt: skip
    for threads, ops in report["threads"].items():
        lines += [f"   * - {threads}", f"     - {ops:.0f}"]
    lines += _owner_table(report) + _django_table(report)
    if "async" in report:
        growth = "Async: slowdown as the collection grows"
        lines += _results(ASYNC.of(report), "Async operations per second", growth)
    path.write_text("\n".join(lines) + "\n")


def write_figures(report: dict[str, Any], out: Path) -> None:
    """Draw the figures of ``report`` and the page part that shows them, in ``out``."""
    plot(report, out)
    write_rst(report, out / "figures.rst.inc")
