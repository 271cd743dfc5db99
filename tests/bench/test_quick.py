"""Every benchmark in bench/ has a quick-mode test, and those that need no broker run here (the others:
tests/integration/test_bench_quick.py). They check that a benchmark works, never its figures."""

from __future__ import annotations

from pathlib import Path

from tests.integration import test_bench_quick as on_a_broker
from tests.support.bench import BENCH, positive, run_quick
from tests.support.paths import ROOT


def test_every_benchmark_has_a_quick_test() -> None:
    scripts = {p.stem[len("bench_"):] for p in BENCH.glob("bench_*.py")}
    assert scripts, f"no bench_*.py under {BENCH}"  # a moved folder must fail here, not pass on an empty set
    names = [*globals(), *vars(on_a_broker)]
    tested = {name[len("test_"):-len("_quick")] for name in names if name.startswith("test_") and name.endswith("_quick")}
    assert scripts <= tested, f"benchmarks without a quick-mode test: {sorted(scripts - tested)}"


def test_decode_quick(tmp_path: Path) -> None:
    report = run_quick("decode", {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, tmp_path, timeout=120)
    assert {r["label"] for r in report["rows"]} >= {"jvquant lv1", "jvquant lv2", "infoway trade"}
    for row in report["rows"]:
        positive(row, "records", "decode_us", "decode_avro_us")
        assert row["decode_avro_us"] >= row["decode_us"] * 0.5  # same records, encoding added
