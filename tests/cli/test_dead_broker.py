"""A command pointed at a broker that does not answer says so in one line and exits 1 soon: before,
`marketpipe tail md.tick` printed ~300 librdkafka FAIL lines to stderr during a 15 s wait. No broker
is needed: the address is a port nothing listens on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from marketpipe.runtime.localhost import free_port


@pytest.mark.parametrize("command", [["tail", "md.tick"], ["dlq", "list"]], ids=lambda c: " ".join(c))
def test_a_dead_broker_is_one_line_and_exit_1(command: list[str], tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_", "SCHEMA_REGISTRY"))}
    env.update({"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}", "MARKETPIPE_HOME": str(tmp_path)})
    # the timeout only keeps a hang from blocking the suite; what is checked is the output
    run = subprocess.run([sys.executable, "-m", "marketpipe", *command], env=env, capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 1, run.stderr[-1500:]
    assert len(lines) == 1, f"{len(lines)} lines:\n" + "\n".join(lines[:5])
    assert "127.0.0.1" in lines[0] and "FAIL" not in lines[0]
