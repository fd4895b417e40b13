"""The benchmark runs end to end (a tiny run: figures are not asserted)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("ceiling.png", "peers.png", "growth.png", "django.png")
ASYNC_FIGURES = ("async_ceiling.png", "async_peers.png", "async_growth.png")
ASYNC_OPERATIONS = ("get", "set", "has", "add", "delete", "touch", "incr", "get_many (10 keys)",
                    "set_many (10 keys)")  # fmt: skip


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bench", *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One quick run for the module: its output folder and what it printed."""
    out = tmp_path_factory.mktemp("bench")
    uri = ["--uri", os.environ["MONGODB_URI"]] if os.environ.get("MONGODB_URI") else []
    return out, bench("--quick", "--out", str(out), *uri).stdout


def test_quick_benchmark(quick: tuple[Path, str]) -> None:
    tmp_path, stdout = quick
    assert "vs raw" in stdout and "slowdown" in stdout
    assert "'retryWrites': False" in stdout and "AsyncMongoClient, Motor" in stdout
    report = json.loads((tmp_path / "benchmark.json").read_text())
    assert report["client_options"]["retryWrites"] is False
    commands = report["commands_per_op"]
    for operation in ("get", "set", "has", "add", "delete", "touch", "inc"):
        assert commands[f"ours: {operation}"] == 1.0, operation
    page = (tmp_path / "figures.rst.inc").read_text()
    for name in FIGURES + ASYNC_FIGURES:
        assert (tmp_path / name).stat().st_size > 10_000, name
        assert f":target: _images/{name}" in page, name


def test_quick_benchmark_owner_and_django(quick: tuple[Path, str]) -> None:
    """Owner writes, listing and revoking are one command each; a Django request is two."""
    report = json.loads((quick[0] / "benchmark.json").read_text())
    commands = report["commands_per_op"]
    for operation in ("set (owner_key on)", "set (owner_key off)", "owner sessions (list 3)",
                      "owner revoke (3 sessions)"):  # fmt: skip
        assert commands[f"ours: {operation}"] == 1.0, operation
    assert commands["ours: django request"] == 2.0  # one find, one update
    rows = {f"{row['system']}: {row['operation']}": row for row in report["rows"]}
    for name in ("ours: set (owner_key on)", "ours: owner revoke (3 sessions)",
                 "ours: django request"):  # fmt: skip
        assert rows[name]["vs_ceiling"] > 0, name
    assert report["owner"]["write_cost_ours"] > 0
    assert "ours: owner sessions (list 3) (200 to 400)" in report["growth"]
    assert "ours: owner revoke (3 sessions) (200 to 400)" in report["growth"]
    engines = report["django"]["requests"]
    for engine in ("signed_cookies", "db (SQLite)", "file", "cache (locmem)"):
        assert engines[f"Django {engine}: request"] > 0, engine


def test_quick_benchmark_async_half(quick: tuple[Path, str]) -> None:
    """Every async operation is one command, alone and from 64 tasks, and is measured."""
    half = json.loads((quick[0] / "benchmark.json").read_text())["async"]
    commands = half["commands_per_op"]
    for operation in ASYNC_OPERATIONS:
        assert commands[f"ours async: {operation}"] == 1.0, operation
        assert commands[f"ours async: {operation} (64 tasks)"] == 1.0, operation
        assert commands[f"raw AsyncMongoClient: {operation}"] == 1.0, operation
    rows = {f"{row['system']}: {row['operation']}": row for row in half["rows"]}
    for operation in ASYNC_OPERATIONS:
        assert rows[f"ours async: {operation}"]["vs_ceiling"] > 0, operation
    requests = {"litestar": "mongo_session_backends.litestar",
                "fastapi": "mongo_session_backends.starlette"}  # fmt: skip
    for framework, module in requests.items():
        if importlib.util.find_spec(module):
            assert commands[f"ours async: {framework} request"] == 2.0, framework
            assert rows[f"ours async: {framework} request"]["vs_ceiling"] > 0, framework
    growth = half["growth"]
    assert "ours async: get (200 to 400)" in growth


def test_replot_draws_the_recorded_figures_again(tmp_path: Path) -> None:
    recorded = ROOT / "docs" / "bench"
    (tmp_path / "benchmark.json").write_text((recorded / "benchmark.json").read_text())
    bench("--replot", "--out", str(tmp_path))
    page = (tmp_path / "figures.rst.inc").read_text()
    assert page == (recorded / "figures.rst.inc").read_text()
    assert "embedded SecantusDB test server" in page
    for name in FIGURES + ASYNC_FIGURES:
        assert (tmp_path / name).stat().st_size > 10_000, name


def test_replot_without_a_recorded_run_says_so(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench", "--replot", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "benchmark.json, which does not exist" in result.stderr
