"""Run every benchmark in bench/ one after another and keep their reports.

Benchmarks print tables of ratios measured side by side in one run (never absolute
wall-clock limits); each report is also written to bench/results/<name>.txt.
Usage: python bench/run_all.py [name ...]   (names without the bench_ prefix and .py)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    wanted = set(argv)
    scripts = sorted(p for p in HERE.glob("bench_*.py") if not wanted or p.stem[len("bench_"):] in wanted)
    if not scripts:
        print(f"no benchmark matches {sorted(wanted)}; available: "
              + ", ".join(p.stem[6:] for p in sorted(HERE.glob('bench_*.py'))), file=sys.stderr)
        return 2
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        started = time.monotonic()
        run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        report = run.stdout + (f"\n[stderr]\n{run.stderr[-4000:]}" if run.returncode else "")
        (results / f"{script.stem}.txt").write_text(report)
        print(report, flush=True)
        print(f"== {script.name}: exit {run.returncode} in {time.monotonic() - started:.0f}s\n", flush=True)
        if run.returncode:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
