"""The benchmark runs end to end (a tiny run: figures are not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_quick_benchmark(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)]
    if os.environ.get("MONGODB_URI"):
        command += ["--uri", os.environ["MONGODB_URI"]]
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "vs raw" in result.stdout and "slowdown" in result.stdout
    report = json.loads((tmp_path / "benchmark.json").read_text())
    assert report["client_options"]["retryWrites"] is False
    commands = report["commands_per_op"]
    for operation in ("get", "set", "has", "add", "delete", "touch", "inc"):
        assert commands[f"ours: {operation}"] == 1.0, operation
    assert (tmp_path / "benchmark.png").stat().st_size > 10_000
