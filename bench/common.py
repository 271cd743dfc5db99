"""What the Kafka benchmarks share: a broker, topics under a fresh prefix, CPU of a process,
record counts from end offsets."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from marketpipe import settings as settings_mod  # noqa: E402
from marketpipe.kafka import topics  # noqa: E402
from marketpipe.runtime.localhost import free_port  # noqa: E402

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def broker() -> Iterator[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` if set, else a local broker of our own for the run."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    from marketpipe.kafka.local import LocalKafka

    # SIGTERM (a timeout, a Ctrl-C to a pipeline, pkill) unwinds like Ctrl-C, so the broker this run
    # started is stopped with it instead of outliving the benchmark
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as home:
        local = LocalKafka(home=Path(home), port=free_port(), progress=lambda m: print(m, file=sys.stderr))
        address = local.up()
        try:
            yield address
        finally:
            local.down()


def env_for(bootstrap: str, prefix: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_", "SCHEMA_REGISTRY"))}
    env.update({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "MARKETPIPE_TOPIC_PREFIX": prefix,
                "MARKETPIPE_HOME": str(home), "MARKETPIPE_METRICS_PORT": "-1", "MARKETPIPE_LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT)})
    return env


def fresh_settings(bootstrap: str, label: str) -> settings_mod.Settings:
    """Settings with a new topic prefix whose declared topics exist."""
    prefix = f"b{uuid.uuid4().hex[:6]}{label}."
    s = settings_mod.load({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "MARKETPIPE_TOPIC_PREFIX": prefix})
    topics.create_topics(s.kafka.client_config(), prefix=prefix)
    return s


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads (librdkafka's included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant (a ``marketpipe process`` that starts one worker per stage)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """:func:`cpu_seconds` of a process and its descendants alive now."""
    total = 0.0
    for p in process_tree(pid):
        try:
            total += cpu_seconds(p)
        except OSError:
            continue
    return total


def records_in(s: settings_mod.Settings, logical: list[str], timeout: float = 30.0) -> int:
    """Messages on the given topics (sum of end offsets; the topics are fresh, so start at 0).

    A topic created a moment ago may not be in the metadata yet, or have no leader yet: that is
    waited for (up to ``timeout``), never reported as a crash.
    """
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    c = Consumer({**s.kafka.client_config(), "group.id": "bench-count"})
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                total = 0
                md = c.list_topics(timeout=10).topics
                for name in (s.topic(t) for t in logical):
                    topic = md.get(name)
                    if topic is None or topic.error is not None or not topic.partitions:
                        raise LookupError(f"{name} not in the metadata yet")
                    for p in topic.partitions:
                        total += c.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                return total
            except (KafkaException, LookupError) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"could not read end offsets of {logical}: {exc}") from None
                time.sleep(0.1)
    finally:
        c.close()


def options(argv: list[str]) -> tuple[bool, Path | None]:
    """``--quick`` (a small run of seconds, for tests) and ``--json PATH`` (the report as data)."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small backlog, short windows: checks that it works")
    ap.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = ap.parse_args(argv)
    return args.quick, args.json


def write_json(path: Path | None, report: dict) -> None:
    if path is not None:
        import json

        path.write_text(json.dumps(report, indent=1, default=str))


def load_line() -> str:
    """The machine's load when a figure was taken: absolute numbers are only comparable at equal load."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def machine_speed() -> float:
    """CPU µs of ``sum(range(1000))`` (best of 5 × 2,000): a yardstick printed beside figures in µs, so
    figures of two days can be compared on the machine's speed of each day, not only on the code."""
    import timeit

    return min(timeit.repeat("sum(range(1000))", repeat=5, number=2000, timer=time.process_time)) / 2000 * 1e6


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_until(cond, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return False
