"""``marketpipe demo`` itself, the README's first command, on the session broker."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.test_demo_parts import _alive

pytestmark = pytest.mark.integration


def test_demo_runs_the_pipeline_trades_summarizes_and_leaves_no_process_behind(mp_env, tmp_path) -> None:
    run = subprocess.run([sys.executable, "-m", "marketpipe", "demo", "--seconds", "35", "--bar", "2s",
                          "--orders-after", "6"], env=mp_env, capture_output=True, text=True, timeout=300)
    out, err = run.stdout, run.stderr
    assert run.returncode == 0, err[-3000:]
    started = {name: int(pid) for name, pid in re.findall(r"started (\S+) \(pid (\d+)\)", err)}
    assert set(started) == {"sim-jvquant", "sim-infoway", "sim-jin10", "producer-jvquant", "producer-infoway",
                            "producer-jin10", "processor", "trader"}
    assert not [name for name, pid in started.items() if _alive(pid)]  # no orphans
    summary = out[out.rindex("summary"):]
    counts = {topic: int(n) for topic, n in re.findall(r"^\s+(\S+)\s+(\d+) records$", summary, re.M)}
    for topic in ("raw.jvquant", "raw.infoway", "raw.jin10", "md.tick", "md.quote", "md.bar"):
        assert counts.get(topic, 0) > 0, (topic, summary)
    # two valid orders (accepted, submitted, fills) and one refused by the lot rule
    assert counts.get("order.events", 0) >= 5, summary
    assert re.search(r"dead letters\s+0$", summary, re.M), summary
    assert re.search(r"latency .*p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms", summary), summary
    logs = mp_env["MARKETPIPE_HOME"] + "/demo/logs"
    trader_log = open(f"{logs}/trader.log").read()
    assert "lot_size" in trader_log and "FILLED" in trader_log, trader_log[-2000:]
