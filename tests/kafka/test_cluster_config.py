"""The local cluster's configuration and status, without a JVM: what `kafka up --brokers 3` writes for
each node, which homes it refuses, and how `kafka status` reads the controller and replication."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from marketpipe.kafka.cluster import (
    ClusterStatus,
    LocalCluster,
    NodeStatus,
    UnderReplicated,
    cluster_layout,
    existing_brokers,
    layout_mismatch,
    quorum_leader,
    under_replicated,
)
from marketpipe.kafka.local import server_properties
from tests.support.paths import ROOT

POM = ROOT / "deploy" / "kafka" / "pom.xml"


def read_props(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def test_three_node_configs_name_every_voter_on_distinct_ports(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, cluster_layout(3, 19092), heap="-Xmx384m", cache_dir=tmp_path / "cache", pom=POM)
    props = {}
    for node_id, node in cluster.nodes.items():
        node.dir.mkdir(parents=True)
        props[node_id] = read_props(node._write_config())
        assert node.dir == tmp_path / "kafka" / f"node-{node_id}"
    voters = "1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"
    assert {p["controller.quorum.voters"] for p in props.values()} == {voters}
    assert [p["node.id"] for p in props.values()] == ["1", "2", "3"]
    assert all(p["process.roles"] == "broker,controller" for p in props.values())
    listeners = [p["listeners"] for p in props.values()]
    assert listeners[1] == "PLAINTEXT://127.0.0.1:19094,CONTROLLER://127.0.0.1:19095"
    ports = [int(addr.rsplit(":", 1)[1]) for line in listeners for addr in line.split(",")]
    assert len(set(ports)) == 6
    assert len({p["log.dirs"] for p in props.values()}) == 3
    for p in props.values():
        assert (p["offsets.topic.replication.factor"], p["transaction.state.log.replication.factor"],
                p["transaction.state.log.min.isr"], p["min.insync.replicas"], p["default.replication.factor"],
                p["unclean.leader.election.enable"]) == ("3", "3", "2", "2", "3", "false")
    assert cluster.bootstrap == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
    # one cluster id for all nodes, or they would not join one quorum
    assert len({node.cluster_id_file for node in cluster.nodes.values()}) == 1


def test_a_single_broker_asks_for_no_replica_it_cannot_hold(tmp_path: Path) -> None:
    """One node: every replication factor and in-sync minimum is 1 (more and it could not create its
    internal topics, nor accept an acks=all write), and it is its own quorum on the ports it was given."""
    props = server_properties("127.0.0.1", 9092, 9093, tmp_path)
    replicas = {k: v for k, v in props.items() if k.endswith(("replication.factor", ".min.isr", "min.insync.replicas"))}
    assert len(replicas) >= 5 and set(replicas.values()) == {"1"}, replicas
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["log.dirs"] == str(tmp_path)


def test_a_home_keeps_its_shape(tmp_path: Path) -> None:
    assert existing_brokers(tmp_path) is None and layout_mismatch(tmp_path, 3) is None
    (tmp_path / "kafka" / "data").mkdir(parents=True)
    assert existing_brokers(tmp_path) == 1
    assert layout_mismatch(tmp_path, 1) is None
    why = layout_mismatch(tmp_path, 3)
    assert why is not None and "holds a single broker, not 3" in why and "\n" not in why

    other = tmp_path / "other"
    for i in (1, 2, 3):
        (other / "kafka" / f"node-{i}").mkdir(parents=True)
    assert existing_brokers(other) == 3 and layout_mismatch(other, 3) is None
    assert "holds a 3-broker cluster, not 1" in (layout_mismatch(other, 1) or "")


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_"))}
    env.update(MARKETPIPE_HOME=str(home), MARKETPIPE_KAFKA_PORT="19092")
    return subprocess.run([sys.executable, "-m", "marketpipe", "kafka", *args], env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("made,asked", [(["data"], ["--brokers", "3"]), (["node-1", "node-2", "node-3"], [])])
def test_kafka_up_refuses_a_home_of_another_shape_in_one_line(tmp_path: Path, made: list[str], asked: list[str]) -> None:
    for d in made:
        (tmp_path / "kafka" / d).mkdir(parents=True)
    run = cli(tmp_path, "up", "--local", *asked)
    assert run.returncode == 1 and run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1 and "holds a" in run.stderr, run.stderr


def test_status_of_a_stopped_cluster_lists_each_node(tmp_path: Path) -> None:
    for i in (1, 2, 3):
        (tmp_path / "kafka" / f"node-{i}").mkdir(parents=True)
    run = cli(tmp_path, "status")
    assert run.returncode == 1
    assert run.stdout.startswith("stopped: 127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096 (3 nodes)")
    assert "node 3: down" in run.stdout and "port 19096 (controller 19097)" in run.stdout


def test_the_controller_is_the_leader_of_the_highest_epoch() -> None:
    assert quorum_leader([]) is None
    assert quorum_leader([{"leaderId": -1, "leaderEpoch": 4}]) is None
    # node 3 lost contact at epoch 2 and still names node 1; the others moved on to node 2
    states = [{"leaderId": 2, "leaderEpoch": 3}, {"leaderId": 2, "leaderEpoch": 3}, {"leaderId": 1, "leaderEpoch": 2}]
    assert quorum_leader(states) == 2


def test_under_replicated_partitions_from_metadata() -> None:
    part = SimpleNamespace
    md = SimpleNamespace(topics={
        "md.tick": SimpleNamespace(partitions={0: part(replicas=[1, 2, 3], isrs=[1, 3]),
                                               1: part(replicas=[2, 3, 1], isrs=[2, 3, 1])}),
        "md.bar": SimpleNamespace(partitions={0: part(replicas=[3], isrs=[3])}),
    })
    found = under_replicated(md)
    assert found == (UnderReplicated("md.tick", 0, (1, 2, 3), (1, 3)),)
    status = ClusterStatus((NodeStatus(1, True, 10, 9092, 9093, "running"),
                            NodeStatus(2, False, None, 9094, 9095, "not running")), "b", 1, found)
    lines = status.lines()
    assert lines[1].startswith("node 2: down") and "active controller: node 1" in lines
    assert lines[-1] == "under-replicated partitions: 1 (md.tick[0] in-sync [1, 3] of [1, 2, 3])"
    assert not status.running


def test_status_finds_the_nodes_on_the_ports_they_were_started_on(tmp_path: Path) -> None:
    from marketpipe.kafka.cluster import layout_on_ports, save_layout

    for i in (1, 2, 3):
        (tmp_path / "kafka" / f"node-{i}").mkdir(parents=True)
    save_layout(tmp_path, layout_on_ports([(31001, 31002), (31003, 31004), (31005, 31006)]))
    run = cli(tmp_path, "status")  # MARKETPIPE_KAFKA_PORT=19092 here: the saved ports win
    assert "127.0.0.1:31001,127.0.0.1:31003,127.0.0.1:31005 (3 nodes)" in run.stdout
    assert "port 31005 (controller 31006)" in run.stdout
