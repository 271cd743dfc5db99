"""A record Kafka refuses is counted by the processor's Output, so the batch is never acknowledged.

The delivery callback is set once in the producer's configuration (not per produce call); this
checks that it still fires for failures. No broker answers on the port, and records time out
after 300 ms. Runs in a subprocess: importing processors.app builds the Faust app from the
environment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
from processors.app import SETTINGS, Output
out = Output(SETTINGS)
out.send("md.tick", "Tick", "600519.SH", {
    "provider": "jvquant", "symbol": "600519.SH", "venue_symbol": "600519", "event_time": 1, "receive_time_ns": 2,
    "price": 1.0, "size": 100.0, "amount": None, "side": "UNKNOWN", "trade_id": "1", "session": None,
    "parser_version": "t", "source": {"topic": "raw.jvquant", "partition": 0, "offset": 1, "index": 0}}, 1)
print(out.flush_now())
"""


def test_a_refused_record_is_reported_by_flush(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MARKETPIPE_HOME": str(tmp_path),
           "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", "KAFKA_OPT_MESSAGE_TIMEOUT_MS": "300",
           "MARKETPIPE_LOG_LEVEL": "CRITICAL"}
    run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "0 records unacknowledged and 1 refused by Kafka"
