"""The benchmark runs end to end (a tiny run: figures are not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("ceiling.png", "peers.png", "growth.png")


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bench", *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_quick_benchmark(tmp_path: Path) -> None:
    uri = ["--uri", os.environ["MONGODB_URI"]] if os.environ.get("MONGODB_URI") else []
    result = bench("--quick", "--out", str(tmp_path), *uri)
    assert "vs raw" in result.stdout and "slowdown" in result.stdout
    report = json.loads((tmp_path / "benchmark.json").read_text())
    assert report["client_options"]["retryWrites"] is False
    commands = report["commands_per_op"]
    for operation in ("get", "set", "has", "add", "delete", "touch", "inc"):
        assert commands[f"ours: {operation}"] == 1.0, operation
    page = (tmp_path / "figures.rst.inc").read_text()
    for name in FIGURES:
        assert (tmp_path / name).stat().st_size > 10_000, name
        assert f":target: _images/{name}" in page, name


def test_replot_draws_the_recorded_figures_again(tmp_path: Path) -> None:
    recorded = ROOT / "docs" / "bench"
    (tmp_path / "benchmark.json").write_text((recorded / "benchmark.json").read_text())
    bench("--replot", "--out", str(tmp_path))
    page = (tmp_path / "figures.rst.inc").read_text()
    assert page == (recorded / "figures.rst.inc").read_text()
    assert "embedded SecantusDB test server" in page
    for name in FIGURES:
        assert (tmp_path / name).stat().st_size > 10_000, name


def test_replot_without_a_recorded_run_says_so(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench", "--replot", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "benchmark.json, which does not exist" in result.stderr
