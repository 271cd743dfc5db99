"""A local replicated Kafka cluster (``marketpipe kafka up --brokers 3``): N KRaft nodes on loopback.

Every node is a :class:`~marketpipe.kafka.local.LocalKafka` from the same cached jars, both broker
and controller, in its own directory ``<home>/kafka/node-<id>`` (config, data, log, pid file),
with its own client port and controller port. All of them are voters of one controller quorum,
so a majority (two of three) keeps the cluster writable when one node dies. Node ``i`` listens on
``base + 2(i-1)`` and its controller on the port after it: 9092/9093, 9094/9095, 9096/9097 by
default, so node 1 is where a single broker would be and a client that knows only
``MARKETPIPE_KAFKA_PORT`` still finds the cluster.

The broker defaults of a cluster make it durable (:func:`marketpipe.kafka.local.durability_properties`):
RF 3 for internal and new topics, ``min.insync.replicas=2``, no unclean leader election.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from marketpipe.kafka.local import LauncherError, LocalKafka
from marketpipe.runtime import processes


@dataclass(frozen=True)
class NodeSpec:
    node_id: int
    port: int
    controller_port: int


@dataclass(frozen=True)
class ClusterLayout:
    host: str
    nodes: tuple[NodeSpec, ...]

    @property
    def voters(self) -> str:
        """``controller.quorum.voters``: every node votes."""
        return ",".join(f"{n.node_id}@{self.host}:{n.controller_port}" for n in self.nodes)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self.host}:{n.port}" for n in self.nodes)

    def node(self, node_id: int) -> NodeSpec:
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(f"no node {node_id} in this cluster (nodes {', '.join(str(n.node_id) for n in self.nodes)})")


def cluster_layout(brokers: int, base_port: int = 9092, host: str = "127.0.0.1") -> ClusterLayout:
    """Node ``i`` (from 1) on ``base + 2(i-1)``, its controller one port higher."""
    if brokers < 1:
        raise ValueError("a cluster has at least one broker")
    return ClusterLayout(host, tuple(NodeSpec(i, base_port + 2 * (i - 1), base_port + 2 * (i - 1) + 1)
                                     for i in range(1, brokers + 1)))


def layout_on_ports(ports: Sequence[tuple[int, int]], host: str = "127.0.0.1") -> ClusterLayout:
    """A layout on given (client, controller) port pairs, e.g. free ports in tests."""
    return ClusterLayout(host, tuple(NodeSpec(i, p, c) for i, (p, c) in enumerate(ports, start=1)))


def node_dir(home: Path, node_id: int) -> Path:
    return Path(home).absolute() / "kafka" / f"node-{node_id}"


def layout_file(home: Path) -> Path:
    return Path(home).absolute() / "kafka" / "layout.json"


def saved_layout(home: Path) -> ClusterLayout | None:
    """The layout ``up`` recorded in ``home``: ``down`` and ``status`` find the nodes on the ports
    they were started on, whatever MARKETPIPE_KAFKA_PORT says now."""
    try:
        data = json.loads(layout_file(home).read_text())
        return ClusterLayout(str(data["host"]), tuple(NodeSpec(int(i), int(p), int(c)) for i, p, c in data["nodes"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_layout(home: Path, layout: ClusterLayout) -> None:
    layout_file(home).write_text(json.dumps(
        {"host": layout.host, "nodes": [[n.node_id, n.port, n.controller_port] for n in layout.nodes]}) + "\n")


def existing_brokers(home: Path) -> int | None:
    """How many brokers the local layout under ``home`` holds: N node directories, 1 for a single
    broker's ``kafka/data`` or ``kafka/server.properties``, None when nothing was made yet."""
    kafka = Path(home).absolute() / "kafka"
    nodes = [d for d in kafka.glob("node-*") if d.is_dir()]
    if nodes:
        return len(nodes)
    if (kafka / "data").exists() or (kafka / "server.properties").exists():
        return 1
    return None


def layout_mismatch(home: Path, brokers: int) -> str | None:
    """One line saying why ``home`` cannot run ``brokers`` brokers, or None when it can. A home's
    data belongs to one shape of cluster (its metadata log names its voters): reshaping it in
    place would lose or split it, so it is refused instead."""
    have = existing_brokers(home)
    if have is None or have == brokers:
        return None
    shape = "a single broker" if have == 1 else f"a {have}-broker cluster"
    return (f"{Path(home).absolute() / 'kafka'} holds {shape}, not {brokers} broker(s): use "
            f"--brokers {have}, another MARKETPIPE_HOME, or `kafka down` and delete that directory")


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    running: bool
    pid: int | None
    port: int
    controller_port: int
    detail: str


@dataclass(frozen=True)
class UnderReplicated:
    topic: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}] in-sync {list(self.isr)} of {list(self.replicas)}"


@dataclass(frozen=True)
class ClusterStatus:
    nodes: tuple[NodeStatus, ...]
    bootstrap: str
    controller: int | None  # the quorum leader, None when unknown (no majority, or not started)
    under_replicated: tuple[UnderReplicated, ...] | None  # None: no node answered metadata

    @property
    def running(self) -> bool:
        return all(n.running for n in self.nodes)

    def lines(self) -> list[str]:
        out = [f"node {n.node_id}: {'up  ' if n.running else 'down'} pid {n.pid or '-':<7} "
               f"port {n.port} (controller {n.controller_port}) — {n.detail}" for n in self.nodes]
        out.append(f"active controller: {'node ' + str(self.controller) if self.controller else 'unknown'}")
        if self.under_replicated is None:
            out.append("under-replicated partitions: unknown (no node answers)")
        else:
            listed = ", ".join(str(u) for u in self.under_replicated[:10])
            more = f" and {len(self.under_replicated) - 10} more" if len(self.under_replicated) > 10 else ""
            out.append(f"under-replicated partitions: {len(self.under_replicated)}"
                       + (f" ({listed}{more})" if listed else ""))
        return out


def quorum_leader(states: Sequence[dict[str, Any]]) -> int | None:
    """The controller quorum's leader from the nodes' ``quorum-state`` files: the leader named at
    the highest epoch any node has seen (a node that lost contact may still name an old one)."""
    known = [s for s in states if isinstance(s.get("leaderId"), int) and s["leaderId"] >= 0]
    if not known:
        return None
    return int(max(known, key=lambda s: int(s.get("leaderEpoch", -1)))["leaderId"])


def under_replicated(metadata: Any) -> tuple[UnderReplicated, ...]:
    """Partitions whose in-sync replicas are fewer than their replicas, from ``list_topics``."""
    out = []
    for name, topic in sorted(metadata.topics.items()):
        for pid, part in sorted(topic.partitions.items()):
            if len(part.isrs) < len(part.replicas):
                out.append(UnderReplicated(name, pid, tuple(part.replicas), tuple(part.isrs)))
    return tuple(out)


class LocalCluster:
    """N local KRaft nodes owned by one ``home``; the same lifecycle as one :class:`LocalKafka`."""

    def __init__(
        self,
        home: Path,
        layout: ClusterLayout,
        heap: str,  # per node: Settings.kafka_node_heap (MARKETPIPE_KAFKA_NODE_HEAP)
        progress: Callable[[str], None] = lambda msg: None,
        cache_dir: Path | None = None,
        pom: Path | None = None,
    ) -> None:
        self.home = Path(home).absolute()
        self.layout = layout
        self.heap = heap
        self.progress = progress
        cluster_id = self.home / "kafka" / "cluster.id"
        self.nodes = {
            n.node_id: LocalKafka(home=self.home, port=n.port, controller_port=n.controller_port, heap=heap,
                                  host=layout.host, progress=progress, cache_dir=cache_dir, pom=pom,
                                  node_id=n.node_id, voters=layout.voters, brokers=len(layout.nodes),
                                  node_dir=node_dir(self.home, n.node_id), cluster_id_file=cluster_id)
            for n in layout.nodes
        }
        self.version = self.nodes[layout.nodes[0].node_id].version

    @property
    def bootstrap(self) -> str:
        return self.layout.bootstrap

    def node(self, node_id: int) -> LocalKafka:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise LauncherError(f"no node {node_id}: this cluster has nodes {sorted(self.nodes)}") from None

    # -- lifecycle ----------------------------------------------------------------------
    def up(self, timeout: float = 120.0) -> str:
        """Start every node this home does not run yet, then wait for all; the bootstrap list."""
        if (why := layout_mismatch(self.home, len(self.nodes))) is not None:
            raise LauncherError(why)
        states = {i: node.status() for i, node in self.nodes.items()}
        if all(st.running for st in states.values()):
            self.progress(f"Kafka cluster already running at {self.bootstrap} (pids "
                          + ", ".join(str(st.pid) for st in states.values()) + ")")
            return self.bootstrap
        first = next(iter(self.nodes.values()))
        first.check_java()
        first.ensure_jars()
        (self.home / "kafka").mkdir(parents=True, exist_ok=True)
        save_layout(self.home, self.layout)
        for node_id, node in self.nodes.items():
            if states[node_id].pid is None:  # a live pid is a node still booting: wait for it below
                node.start()
        deadline = time.monotonic() + timeout
        for node in self.nodes.values():
            node.wait_ready(max(1.0, deadline - time.monotonic()))
        self.progress(f"Kafka cluster ready at {self.bootstrap} ({len(self.nodes)} nodes)")
        return self.bootstrap

    def down(self, timeout: float = 30.0) -> bool:
        """Stop every node; False if none ran. All get SIGTERM at once: stopped one by one, the last
        nodes would lose their quorum and wait out their controlled shutdown."""
        running = {i: pid for i, node in self.nodes.items() if (pid := node.pid()) is not None}
        if not running:
            for node in self.nodes.values():
                node.pid_file.unlink(missing_ok=True)
            return False
        self.progress(f"stopping Kafka nodes {', '.join(map(str, running))}")
        for pid in running.values():
            processes.signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(processes.pid_alive(pid) for pid in running.values()):
            for pid in running.values():
                processes.reap(pid)
            time.sleep(0.2)
        for node_id in running:
            self.nodes[node_id].down(timeout=0)  # SIGKILLs a straggler, reaps, removes the pid file
        return True

    def status(self, timeout: float = 5.0) -> ClusterStatus:
        nodes = []
        for i, node in self.nodes.items():
            st = node.status()
            nodes.append(NodeStatus(i, st.running, st.pid, node.port, node.controller_port, st.detail))
        up = [n for n in nodes if n.running]
        return ClusterStatus(tuple(nodes), self.bootstrap, self.controller(up=[n.node_id for n in up]),
                             self._under_replicated(up, timeout))

    def controller(self, up: Sequence[int] | None = None) -> int | None:
        """The active controller (the quorum's leader) as the running nodes last recorded it."""
        ids = up if up is not None else [i for i, node in self.nodes.items() if node.pid() is not None]
        states = []
        for i in ids:
            path = self.nodes[i].data_dir / "__cluster_metadata-0" / "quorum-state"
            try:
                states.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return quorum_leader(states)

    def _under_replicated(self, up: Sequence[NodeStatus], timeout: float) -> tuple[UnderReplicated, ...] | None:
        if not up:
            return None
        from confluent_kafka.admin import AdminClient

        from marketpipe.kafka.quietlog import rdkafka_logger

        bootstrap = ",".join(f"{self.layout.host}:{n.port}" for n in up)
        try:
            md = AdminClient({"bootstrap.servers": bootstrap, **rdkafka_logger()}).list_topics(timeout=timeout)
        except Exception:  # no answer in time: say unknown rather than fail the status
            return None
        return under_replicated(md)
