"""Running a benchmark of bench/ in its quick mode from a test, and checking its report's figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT

BENCH = ROOT / "bench"


def run_quick(name: str, env: dict[str, str], tmp_path: Path, timeout: float = 400) -> dict:
    out = tmp_path / f"{name}.json"
    run = subprocess.run([sys.executable, str(BENCH / f"bench_{name}.py"), "--quick", "--json", str(out)],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"bench_{name} --quick exited {run.returncode}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    report = json.loads(out.read_text())
    assert report["quick"] is True
    return report


def positive(row: dict, *keys: str) -> None:
    for key in keys:
        assert isinstance(row[key], (int, float)) and row[key] > 0, (key, row)
