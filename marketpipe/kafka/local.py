"""A real single-node Apache Kafka broker (KRaft) on this machine, without Docker.

The jars come from Maven Central through Maven (``deploy/kafka/pom.xml`` pins the
version), are cached once per version under ``~/.cache/marketpipe/kafka-<version>``,
and run on the machine's Java 17 as one process that is both controller and broker.
Data, config, log and pid live under ``<home>/kafka`` so a stopped broker restarts
with its topics intact.

``up`` is idempotent: a broker this home already runs is reused, never doubled.

One :class:`LocalKafka` is also one node of a local cluster (``marketpipe/kafka/cluster.py``):
then it lives in its own directory, has its own node id and names every voter of the quorum.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from marketpipe import settings
from marketpipe.kafka import clients
from marketpipe.runtime import processes
from marketpipe.runtime.localhost import free_port
from marketpipe.runtime.resources import resource

if TYPE_CHECKING:
    from marketpipe.kafka.security import BrokerSecurity

MIN_JAVA = 17


class LauncherError(RuntimeError):
    """The local broker cannot be started or stopped; the message says what to do."""


def _pom_path(pom: Path | None = None) -> Path:
    """MARKETPIPE_KAFKA_POM when given, else the pom of this installation (checkout or wheel)."""
    if pom is None:
        try:
            pom = resource("kafka-pom.xml")
        except FileNotFoundError as exc:
            raise LauncherError(str(exc)) from None
    if not pom.is_file():
        raise LauncherError(f"MARKETPIPE_KAFKA_POM={pom} is not a file")
    return pom


def kafka_version(pom: Path | None = None) -> str:
    pom = _pom_path(pom)
    text = pom.read_text(encoding="utf-8")
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", text)
    if not match:
        raise LauncherError(f"{pom}: no <kafka.version> property")
    return match.group(1).strip()


def java_major(java: str = "java") -> int:
    """Major version of ``java`` (17 for "17.0.15"); raises LauncherError when absent."""
    exe = shutil.which(java)
    if not exe:
        raise LauncherError("Java is not installed: the local Kafka broker needs Java 17 or newer "
                            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless), "
                            "or point KAFKA_BOOTSTRAP_SERVERS at a running broker")
    out = subprocess.run([exe, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise LauncherError(f"cannot read the Java version from: {out.strip()[:200]}")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def durability_properties(brokers: int) -> dict[str, str]:
    """Broker defaults that make acks=all mean "on two nodes" once there are three or more nodes:
    internal topics and new topics at RF 3, a write needs two in-sync replicas, and an out-of-sync
    replica never becomes leader (that would silently drop acknowledged records). One node keeps
    today's RF 1 defaults: a single broker cannot hold more replicas."""
    if brokers < 3:
        return {}
    return {
        "offsets.topic.replication.factor": "3",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
        "share.coordinator.state.topic.replication.factor": "3",
        "share.coordinator.state.topic.min.isr": "2",
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
    }


def server_properties(host: str, port: int, controller_port: int, data_dir: Path, *, node_id: int = 1,
                      voters: str | None = None, brokers: int = 1) -> dict[str, str]:
    """The node's ``server.properties``; ``voters`` (``id@host:port,...``) defaults to this node alone."""
    lines = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters or f"{node_id}@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        # one node: internal topics cannot have more replicas than brokers
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "num.partitions": "1",
        # tests and the demo create groups often; do not wait 3 s for joiners
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "log.retention.check.interval.ms": "60000",
    }
    lines.update(durability_properties(brokers))
    return lines


@dataclass
class Status:
    running: bool
    pid: int | None
    bootstrap: str
    log: Path
    detail: str


class LocalKafka:
    """One broker, owned by one ``home`` directory."""

    def __init__(
        self,
        home: Path,
        port: int = 9092,
        controller_port: int | None = None,
        heap: str = "-Xms256m -Xmx768m",
        host: str = "127.0.0.1",
        progress: Callable[[str], None] = lambda msg: None,
        cache_dir: Path | None = None,
        pom: Path | None = None,
        security: BrokerSecurity | None = None,
        node_id: int = 1,
        voters: str | None = None,
        brokers: int = 1,
        node_dir: Path | None = None,
        cluster_id_file: Path | None = None,
    ) -> None:
        self.home = Path(home).absolute()
        self.dir = Path(node_dir).absolute() if node_dir is not None else self.home / "kafka"
        self.node_id = node_id
        self.voters = voters
        self.brokers = brokers
        # every node of a cluster is formatted with the same cluster id, kept beside the node dirs
        self.cluster_id_file = cluster_id_file or self.dir / "cluster.id"
        self.port = port
        self.controller_port = controller_port or free_port()
        self.heap = heap
        self.host = host
        self.progress = progress
        self.security = security  # the --secure hook: marketpipe/kafka/security.py
        if cache_dir is None or pom is None:  # not given: MARKETPIPE_KAFKA_POM, XDG_CACHE_HOME
            local = settings.load().local
            cache_dir = cache_dir or local.cache_home / "marketpipe"
            pom = pom or local.kafka_pom
        self.pom = _pom_path(pom)
        self.version = kafka_version(self.pom)
        self.libs = cache_dir / f"kafka-{self.version}" / "libs"

    # -- paths --------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / "broker.log"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    # -- lifecycle ----------------------------------------------------------------------
    def pid(self) -> int | None:
        return processes.running_pid(self.pid_file)

    def status(self) -> Status:
        pid = self.pid()
        if pid is None:
            return Status(False, None, self.bootstrap, self.log_file, "not running")
        if port_open(self.host, self.port):
            return Status(True, pid, self.bootstrap, self.log_file, f"running (pid {pid})")
        return Status(False, pid, self.bootstrap, self.log_file, f"process {pid} alive but port {self.port} not answering")

    def up(self, timeout: float = 90.0) -> str:
        """Start the broker unless this home already runs it; return the bootstrap address."""
        current = self.status()
        if current.running:
            self.progress(f"Kafka already running at {self.bootstrap} (pid {current.pid})")
            return self.bootstrap
        if current.pid is not None:  # started a moment ago and still booting
            self._wait_ready(current.pid, timeout)
            return self.bootstrap
        self._check_port()  # before Java and Maven, as ever: the cheapest refusal first
        self.check_java()
        self.ensure_jars()
        pid = self.start()
        self._wait_ready(pid, timeout)
        self.progress(f"Kafka ready at {self.bootstrap} (pid {pid})")
        return self.bootstrap

    def _check_port(self) -> None:
        if port_open(self.host, self.port):
            raise LauncherError(f"port {self.port} is already used by another process; "
                                "set MARKETPIPE_KAFKA_PORT to a free port or KAFKA_BOOTSTRAP_SERVERS to that broker")

    def check_java(self) -> None:
        major = java_major()
        if major < MIN_JAVA:
            raise LauncherError(f"Java {major} found; Kafka {self.version} needs Java {MIN_JAVA}+ "
                                "(apt-get install openjdk-17-jre-headless)")

    def start(self) -> int:
        """Launch the JVM (formatting storage first when new) without waiting; its pid.

        A cluster node cannot answer before a majority of the voters runs, so the cluster starts
        every node first and waits afterwards (:meth:`wait_ready`)."""
        self._check_port()
        self.dir.mkdir(parents=True, exist_ok=True)
        formatted = (self.data_dir / "meta.properties").exists()
        if self.security is not None:
            if formatted and not self.security.exists():
                raise LauncherError(f"{self.dir} holds a broker formatted without --secure (no SCRAM users): "
                                    "use another MARKETPIPE_HOME, or delete that directory")
            self.security.ensure(self.host)
        props = self._write_config()
        if not formatted:
            self._format(props)
        what = f"node {self.node_id} of {self.brokers}" if self.brokers > 1 else "(KRaft)"
        self.progress(f"starting Kafka {self.version} {what} at {self.bootstrap}; log: {self.log_file}")
        cmd = ["java", *self.heap.split(), "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
               f"-Dkafka.logs.dir={self.dir}",
               "-cp", f"{self.libs}/*", "kafka.Kafka", str(props)]
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=self.dir)
        self.pid_file.write_text(str(proc.pid))
        return proc.pid

    def wait_ready(self, timeout: float = 90.0) -> None:
        pid = self.pid()
        if pid is None:
            raise LauncherError(f"Kafka node {self.node_id} is not running; last log lines:\n{self.log_tail()}")
        self._wait_ready(pid, timeout)

    def down(self, timeout: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``). False if none ran."""
        return processes.stop(self.pid_file, "Kafka", timeout, self.progress)

    # -- helpers ------------------------------------------------------------------------
    def ensure_jars(self) -> None:
        marker = self.libs / ".complete"
        if marker.exists():
            return
        mvn = shutil.which("mvn")
        if not mvn:
            raise LauncherError("Maven (mvn) is not installed: it fetches the Kafka jars from Maven Central "
                                "(apt-get install maven), or point KAFKA_BOOTSTRAP_SERVERS at a running broker")
        self.libs.mkdir(parents=True, exist_ok=True)
        self.progress(f"fetching Apache Kafka {self.version} jars from Maven Central (once) into {self.libs}")
        cmd = [mvn, "-q", "-B", "-f", str(self.pom), "dependency:copy-dependencies",
               f"-DoutputDirectory={self.libs}", "-DincludeScope=runtime"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise LauncherError("mvn could not fetch the Kafka jars (is Maven Central reachable?):\n  "
                                + "\n  ".join(tail))
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise LauncherError(f"mvn finished but no kafka jar is in {self.libs}")
        marker.write_text(self.version)

    def _write_config(self) -> Path:
        props = self.dir / "server.properties"
        lines = server_properties(self.host, self.port, self.controller_port, self.data_dir, node_id=self.node_id,
                                  voters=self.voters, brokers=self.brokers)
        if self.security is not None:
            lines.update(self.security.broker_properties(self.host, self.port, self.controller_port))
        props.touch(mode=0o600)
        props.chmod(0o600)  # it may hold the broker's passwords (--secure)
        props.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        (self.dir / "log4j2.properties").write_text(
            "status = warn\n"
            "appender.console.type = Console\n"
            "appender.console.name = STDOUT\n"
            "appender.console.layout.type = PatternLayout\n"
            "appender.console.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.stdout.ref = STDOUT\n"
            "logger.kafka.name = kafka\nlogger.kafka.level = INFO\n"
            "logger.state.name = state.change.logger\nlogger.state.level = WARN\n"
            "logger.request.name = kafka.request.logger\nlogger.request.level = WARN\n"
        )
        return props

    def _format(self, props: Path) -> None:
        self.progress("formatting the KRaft metadata log")
        cluster_id = self._cluster_id()
        result = subprocess.run(
            ["java", "-cp", f"{self.libs}/*", "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(props), "--ignore-formatted",
             *(self.security.format_args() if self.security is not None else [])],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise LauncherError("kafka storage format failed:\n" + (result.stdout + result.stderr)[-2000:])

    def _cluster_id(self) -> str:
        path = self.cluster_id_file
        if path.exists() and not path.read_text().startswith("-"):
            return path.read_text().strip()
        # A KRaft cluster id is 16 random bytes in URL-safe base64 without padding. One in 64 starts
        # with "-", which kafka-storage's argument parser takes for an option: draw again.
        import base64

        cid = "-"
        while cid.startswith("-"):
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        path.write_text(cid)
        return cid

    def _wait_ready(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not processes.pid_alive(pid):
                processes.reap(pid)
                self.pid_file.unlink(missing_ok=True)
                raise LauncherError(f"Kafka exited during start-up; last log lines:\n{self.log_tail()}")
            if port_open(self.host, self.port) and self._metadata_ok():
                return
            time.sleep(0.3)
        raise LauncherError(f"Kafka did not become ready in {timeout:.0f}s; log: {self.log_file}\n{self.log_tail()}")

    def _metadata_ok(self) -> bool:

        try:
            conf = self.security.client_config() if self.security is not None else {}
            md = clients.admin({"bootstrap.servers": self.bootstrap, **conf}, silent=True).list_topics(timeout=2)
        except Exception:  # not ready yet: any client error means "try again"
            return False
        return bool(md.brokers)

    def log_tail(self, lines: int = 20) -> str:
        return processes.log_tail(self.log_file, lines)
