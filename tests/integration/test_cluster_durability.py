"""Durability on a real three-node cluster: an acknowledged record survives its leader's SIGKILL.

The cluster (``kafka_cluster``, marketpipe.testing) belongs to this module: its nodes are killed and
restarted here, which the session's single broker must never undergo.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource

from marketpipe.kafka import durability, topics
from marketpipe.runtime.localhost import free_port
from marketpipe.testing import Cluster, start_producer, stop_worker, wait_for

RECORDS = 2000


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marketpipe", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def cluster_env(cluster: Cluster, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_"))}
    env.update(KAFKA_BOOTSTRAP_SERVERS=cluster.bootstrap, MARKETPIPE_TOPIC_PREFIX=prefix,
               MARKETPIPE_HOME=str(cluster.launcher.home), MARKETPIPE_METRICS_PORT="-1")
    return env


def status_env(env: dict[str, str]) -> dict[str, str]:
    """`kafka status` on the cluster's home: with KAFKA_BOOTSTRAP_SERVERS set it would only ask that address."""
    return {k: v for k, v in env.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}


def node_line(status: str, node: int) -> str:
    return next(line.strip() for line in status.splitlines() if line.strip().startswith(f"node {node}:"))


def read_partition(bootstrap: str, topic: str, partition: int, timeout: float = 60.0) -> list[int]:
    """Every record of the partition up to its high watermark, as the numbers written."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    consumer.assign([TopicPartition(topic, partition, 0)])
    out: list[int] = []
    offset = -1
    deadline = time.monotonic() + timeout
    while offset + 1 < high and time.monotonic() < deadline:
        for msg in consumer.consume(500, timeout=0.5):
            if not msg.error():
                out.append(int(msg.value()))
                offset = msg.offset()
    consumer.close()
    return out


def test_acknowledged_records_survive_the_leaders_sigkill(kafka_cluster: Cluster) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    env = cluster_env(kafka_cluster, prefix)

    created = cli(env, "topics", "create")
    assert created.returncode == 0, created.stderr
    names = [prefix + s.name for s in topics.TOPICS]
    seen: list[tuple[int, list[durability.TopicFacts]]] = []

    def every_topic_known() -> bool:  # the broker asked may learn of new topics a moment after another
        seen.append(durability.cluster_facts({"bootstrap.servers": kafka_cluster.bootstrap}, names))
        return all(f.exists for f in seen[-1][1])

    wait_for(every_topic_known, timeout=30, what=lambda: f"topics the cluster's metadata lacks: "
             f"{[f.name for f in seen[-1][1] if not f.exists]}")
    brokers, facts = seen[-1]
    assert brokers == 3
    assert {(f.replication_factor, f.min_insync_replicas, f.unclean_leader_election) for f in facts} == {(3, 2, False)}
    # set on the topic by `topics create`, not only inherited from this cluster's broker defaults:
    # the topic stays durable on a cluster whose defaults are weaker
    admin = AdminClient({"bootstrap.servers": kafka_cluster.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, prefix + topics.MD_TICK)
    conf = next(iter(admin.describe_configs([resource]).values())).result(10)
    for key in ("min.insync.replicas", "unclean.leader.election.enable"):
        assert conf[key].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, key
    check = cli(env, "topics", "check")
    assert check.returncode == 0, check.stdout + check.stderr

    topic, partition = prefix + topics.MD_TICK, 0
    victim = kafka_cluster.leader_of(topic, partition)
    assert victim in kafka_cluster.node_ids
    acked: list[int] = []
    failed: list[Any] = []

    def delivered(err: Any, msg: Any) -> None:
        (failed if err is not None else acked).append(err if err is not None else int(msg.value()))

    producer = Producer({"bootstrap.servers": kafka_cluster.bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5})
    down_status = ""
    in_flight = 0
    for i in range(RECORDS):
        producer.produce(topic, str(i).encode(), partition=partition, on_delivery=delivered)
        producer.poll(0)
        time.sleep(0.001)  # ~2 s of writing: the kill lands while records are in flight
        if i == RECORDS // 3:
            in_flight = i + 1 - len(acked)  # produced but not yet acknowledged when the leader dies
            kafka_cluster.kill(victim)
            down_status = cli(status_env(env), "kafka", "status").stdout
    assert producer.flush(120) == 0
    assert not failed, failed[:5]
    assert in_flight > 0
    assert kafka_cluster.leader_of(topic, partition) not in (victim, -1)  # the writes failed over
    assert node_line(down_status, victim).startswith(f"node {victim}: down"), down_status

    kafka_cluster.restart(victim)
    up_status = cli(status_env(env), "kafka", "status")
    assert node_line(up_status.stdout, victim).startswith(f"node {victim}: up"), up_status.stdout
    assert "active controller: node " in up_status.stdout

    numbers = read_partition(kafka_cluster.bootstrap, topic, partition)
    counts = Counter(numbers)
    assert sorted(acked) == list(range(RECORDS))
    assert [n for n in acked if counts[n] != 1] == []  # each acknowledged record, exactly once
    assert len(numbers) == RECORDS

    # the restarted node catches up: nothing stays under-replicated
    wait_for(lambda: kafka_cluster.status().under_replicated == (), 60,
             what=lambda: f"under-replicated: {kafka_cluster.status().under_replicated}")


def test_a_producer_says_once_at_start_that_its_topic_is_weaker_than_the_cluster_allows(
        kafka_cluster: Cluster, tmp_path: Path) -> None:
    prefix = f"w{uuid.uuid4().hex[:8]}."
    env = {**cluster_env(kafka_cluster, prefix), "JVQUANT_TOKEN": "tok",
           "JVQUANT_BASE_URL": f"http://127.0.0.1:{free_port()}"}  # no provider: the producer retries meanwhile
    created = cli(env, "topics", "create", "--replication-factor", "2")
    assert created.returncode == 0, created.stderr
    log = tmp_path / "producer.log"
    proc = start_producer(env, "jvquant", log, "--backoff-base", "1")
    try:
        wait_for(lambda: "durability" in log.read_text(errors="replace"), 60,
                 what=lambda: "the durability line\n" + log.read_text(errors="replace")[-2000:])
    finally:
        stop_worker(proc)
    lines = [line for line in log.read_text(errors="replace").splitlines() if "durability" in line]
    raw = prefix + "raw.jvquant"
    assert len(lines) == 1, lines
    assert "WARNING" in lines[0] and f"{raw}: replication factor 2 < 3" in lines[0], lines[0]


def test_topics_check_fails_on_a_single_broker_with_rf1(mp_env: dict[str, str], mp_settings: Any,
                                                        tmp_path: Path) -> None:
    run = cli(mp_env, "topics", "check")
    assert run.returncode == 1
    tick = mp_settings.topic(topics.MD_TICK)
    assert f"{tick}: replication factor 1 < 3" in run.stdout
    assert f"{tick}: min.insync.replicas=1 < 2" in run.stdout

    allowed = cli(mp_env, "topics", "check", "--allow-single-broker")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "--allow-single-broker" in allowed.stderr and "single-broker default accepted" in allowed.stderr
