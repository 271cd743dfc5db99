"""A broker outage is reported, not shouted: a processor worker whose broker dies logs a few
lines, not ~70 a second (librdkafka and aiokafka retry many times a second)."""

from __future__ import annotations

import signal
import time

from marketpipe import settings as settings_mod
from marketpipe.kafka import topics
from marketpipe.runtime.localhost import free_port
from tests.support.pipeline import start_worker, stop_worker

WINDOW = 12.0


def test_a_broker_outage_logs_a_few_lines_not_a_flood(mp_env: dict[str, str], tmp_path) -> None:
    from marketpipe.kafka.local import LocalKafka
    from marketpipe.processors.readiness import wait_until_consuming

    # its own broker: this test stops it
    broker = LocalKafka(home=tmp_path / "kafka", port=free_port(), controller_port=free_port())
    address = broker.up()
    proc = None
    try:
        env = {**mp_env, "KAFKA_BOOTSTRAP_SERVERS": address}
        s = settings_mod.load(env)
        topics.create_topics(s.kafka.client_config(), prefix=s.topic_prefix)
        log = tmp_path / "worker.log"
        proc = start_worker(env, log)
        assert wait_until_consuming(s, 90), log.read_text(errors="replace")[-2000:]
        before = len(log.read_bytes().splitlines())
        broker.down()
        time.sleep(WINDOW)  # the measurement itself: what the worker logs during the outage
        lines = log.read_bytes().splitlines()[before:]
    finally:
        if proc is not None:
            stop_worker(proc, signal.SIGKILL)
        broker.down()
    text = b"\n".join(lines).decode(errors="replace")
    assert lines, "the outage went unreported"
    assert len(lines) <= 3 * WINDOW, f"{len(lines)} lines in {WINDOW:.0f} s:\n{text[-4000:]}"
