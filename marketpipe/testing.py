"""pytest plugin for services that consume marketpipe (and for marketpipe's own tests).

Installed with marketpipe (entry point ``pytest11``: ``marketpipe.testing``); nothing to import.
Fixtures:

* ``kafka_broker`` / ``kafka_bootstrap`` (session): ONE real Kafka broker per test session —
  ``KAFKA_BOOTSTRAP_SERVERS`` if set; else a container when a Docker engine answers (the image
  ``marketpipe/kafka:local`` when it exists, else testcontainers' Kafka module); else the local
  launcher (:mod:`marketpipe.kafka.local`: Apache Kafka jars on Java 17). Force one with
  ``MARKETPIPE_TEST_BROKER=auto|docker|local``. The path taken is printed and shown in the
  terminal summary.
* ``schema_registry_url`` (session): ONE real Schema Registry per test session, its
  Confluent-compatible URL — ``MARKETPIPE_TEST_REGISTRY_URL`` if set; else Apicurio Registry from
  the local launcher (:mod:`marketpipe.registry_local`: Maven Central, Java 17, in-memory), started
  when the first test asks for it, whichever way the broker runs.
* ``kafka_cluster`` (module): a local three-broker KRaft cluster from the launcher
  (:mod:`marketpipe.kafka.cluster`) in a temporary home, for tests of broker failures:
  ``kill(node)`` (SIGKILL), ``pause(node)`` / ``resume(node)`` (SIGSTOP / SIGCONT),
  ``restart(node)``, ``leader_of(topic, partition)``, ``status()``. Skipped, saying why, only when
  Java 17 or the Kafka jars cannot be had. Mark such tests ``integration``.
* ``topic_prefix``: a unique prefix per test, so tests never see each other's records.
* ``mp_env`` / ``mp_settings``: environment / :class:`~marketpipe.settings.Settings` for that
  prefix on the session broker; ``mp_settings`` also creates every declared topic.
* ``mp_simulator``: ``mp_simulator("jvquant", rate=200, symbols=[...])`` runs a provider
  simulator (:mod:`marketpipe.simulators.runner`) until the test ends.
* ``mp_pipeline``: simulators -> producers -> processor as real processes;
  ``mp_pipeline.start(jvquant=["600519"])`` then ``mp_pipeline.wait_for_ticks("600519.SH", n=10)``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import pytest

from marketpipe.kafka import clients
from marketpipe.runtime.localhost import docker_engine_answers as docker_answers
from marketpipe.runtime.localhost import free_port

BROKER_MODES = ("auto", "docker", "local")
LOCAL_IMAGE = "marketpipe/kafka:local"
#: testcontainers' Kafka module runs this image when ``marketpipe/kafka:local`` is not built.
FALLBACK_IMAGE = "confluentinc/cp-kafka:7.6.1"


# ---------------------------------------------------------------------------------------------
# The broker


@dataclass
class Broker:
    bootstrap: str
    kind: str  # "external" | "docker:<image>" | "local"
    stop: Callable[[], object] = lambda: None


def image_exists(image: str) -> bool:
    try:
        return subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def choose_broker(env: Mapping[str, str], docker: Callable[[], bool] = docker_answers) -> str:
    """"external", "docker" or "local" (see the module docstring for the order)."""
    mode = (env.get("MARKETPIPE_TEST_BROKER") or "auto").lower()
    if mode not in BROKER_MODES:
        raise pytest.UsageError(f"MARKETPIPE_TEST_BROKER={mode!r}: use one of {', '.join(BROKER_MODES)}")
    if mode == "local":
        return "local"
    if mode == "docker":
        if not docker():
            raise pytest.UsageError("MARKETPIPE_TEST_BROKER=docker but no Docker engine answers `docker info`")
        return "docker"
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "external"
    return "docker" if docker() else "local"


def kafka_image_env(host_port: int, host: str = "localhost") -> dict[str, str]:
    """Environment of a single-node KRaft broker in an Apache-Kafka-style image whose client port
    9092 is published on ``host_port``: clients are told to come back to ``host:host_port``."""
    return {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{host}:{host_port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }


def wait_for_metadata(bootstrap: str, timeout: float = 90.0) -> None:

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if clients.admin({"bootstrap.servers": bootstrap}, silent=True).list_topics(timeout=2).brokers:
                return
        except Exception:  # not ready yet: any client error means "try again"
            pass
        time.sleep(0.5)
    raise RuntimeError(f"Kafka at {bootstrap} did not answer metadata requests in {timeout:.0f} s")


def local_image_container(port: int) -> Any:
    """The ``marketpipe/kafka:local`` container (not started), its client port on ``port``."""
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(LOCAL_IMAGE).with_bind_ports(9092, port)
    for key, value in kafka_image_env(port).items():
        container = container.with_env(key, value)
    return container


def start_docker_broker() -> Broker:
    if image_exists(LOCAL_IMAGE):
        port = free_port()
        container = local_image_container(port)
        container.start()
        bootstrap = f"localhost:{port}"
        try:
            wait_for_metadata(bootstrap)
        except BaseException:
            container.stop()
            raise
        return Broker(bootstrap, f"docker:{LOCAL_IMAGE}", container.stop)
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers < 4.10
        from testcontainers.kafka import KafkaContainer

    kafka = KafkaContainer(FALLBACK_IMAGE).with_kraft()
    kafka.start()
    return Broker(kafka.get_bootstrap_server(), f"docker:{FALLBACK_IMAGE}", kafka.stop)


def start_local_broker(home: Path) -> Broker:
    from marketpipe.kafka.local import LauncherError, LocalKafka

    try:
        local = LocalKafka(home=home, port=free_port(), progress=lambda msg: print(msg, file=sys.stderr))
        bootstrap = local.up()
    except LauncherError as exc:
        raise pytest.UsageError(f"marketpipe.testing: the local Kafka broker cannot start: {exc}") from None
    return Broker(bootstrap, "local", lambda: local.down())


@dataclass
class Cluster:
    """A running local cluster and the failures a test inflicts on its nodes (ids 1..N)."""

    bootstrap: str
    launcher: Any  # marketpipe.kafka.cluster.LocalCluster

    @property
    def node_ids(self) -> list[int]:
        return sorted(self.launcher.nodes)

    def pid(self, node: int) -> int:
        pid = self.launcher.node(node).pid()
        if pid is None:
            raise AssertionError(f"Kafka node {node} is not running")
        return int(pid)

    def kill(self, node: int) -> None:
        """SIGKILL: the node dies without a controlled shutdown, like a lost machine."""
        from marketpipe.runtime import processes

        pid = self.pid(node)
        processes.signal_group(pid, signal.SIGKILL)

        def gone() -> bool:
            processes.reap(pid)  # our own child stays a zombie until reaped
            return not processes.pid_alive(pid)

        wait_for(gone, 10, 0.05, f"node {node} to die")

    def pause(self, node: int) -> None:
        """SIGSTOP: the node stays in the cluster's view until its session times out, like a long GC pause."""
        os.kill(self.pid(node), signal.SIGSTOP)

    def resume(self, node: int) -> None:
        os.kill(self.pid(node), signal.SIGCONT)

    def restart(self, node: int, timeout: float = 90.0) -> None:
        """Stop the node if it runs (SIGTERM), start it again on the same data, wait until it answers."""
        local = self.launcher.node(node)
        local.down()
        local.start()
        local.wait_ready(timeout)

    def leader_of(self, topic: str, partition: int, timeout: float = 10.0) -> int:
        """The node leading ``topic``'s ``partition`` now (-1 while it has none)."""
        from confluent_kafka.admin import AdminClient

        md = AdminClient({"bootstrap.servers": self.live_bootstrap(), "log_level": "0"}).list_topics(topic, timeout=timeout)
        return int(md.topics[topic].partitions[partition].leader)

    def live_bootstrap(self) -> str:
        """The client addresses of the nodes running now (a dead bootstrap entry only slows clients)."""
        host = self.launcher.layout.host
        return ",".join(f"{host}:{n.port}" for i, n in sorted(self.launcher.nodes.items()) if n.pid() is not None)

    def status(self) -> Any:
        """:class:`marketpipe.kafka.cluster.ClusterStatus`: nodes, controller, under-replicated partitions."""
        return self.launcher.status()

    def stop(self) -> None:
        for node in self.node_ids:  # a paused node ignores SIGTERM until it is continued
            pid = self.launcher.node(node).pid()
            if pid is not None:
                os.kill(pid, signal.SIGCONT)
        self.launcher.down()


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports."""
    ports: list[int] = []
    while len(ports) < n:
        if (port := free_port()) not in ports:
            ports.append(port)
    return ports


def start_local_cluster(home: Path, brokers: int = 3, env: Mapping[str, str] | None = None) -> Cluster:
    """A local cluster of ``brokers`` nodes on free ports under ``home``; pytest.skip when Java 17
    or the jars cannot be had (the only reasons it may be skipped), any other failure raises."""
    from marketpipe import settings
    from marketpipe.kafka.cluster import LocalCluster, layout_on_ports
    from marketpipe.kafka.local import LauncherError

    local = settings.load(env if env is not None else os.environ).local
    ports = free_ports(2 * brokers)
    launcher = LocalCluster(home, layout_on_ports(list(zip(ports[::2], ports[1::2]))), heap=local.kafka_node_heap,
                            progress=lambda msg: print(msg, file=sys.stderr),
                            cache_dir=local.cache_home / "marketpipe", pom=local.kafka_pom)
    first = next(iter(launcher.nodes.values()))
    try:
        first.check_java()
        first.ensure_jars()
    except LauncherError as exc:
        pytest.skip(f"no local Kafka cluster: {exc}")
    try:
        bootstrap = launcher.up()
    except BaseException:
        launcher.down()
        raise
    return Cluster(bootstrap, launcher)


@pytest.fixture(scope="module")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A three-broker KRaft cluster for the module's tests; stopped afterwards."""
    cluster = start_local_cluster(tmp_path_factory.mktemp("kafka-cluster"))
    print(f"marketpipe.testing: Kafka cluster (3 local nodes) at {cluster.bootstrap}", file=sys.stderr)
    try:
        yield cluster
    finally:
        cluster.stop()


def start_broker(env: Mapping[str, str], home: Path, docker: Callable[[], bool] = docker_answers) -> Broker:
    kind = choose_broker(env, docker)
    if kind == "external":
        return Broker(env["KAFKA_BOOTSTRAP_SERVERS"], "external")
    if kind == "docker":
        try:
            return start_docker_broker()
        except Exception as exc:  # e.g. an engine that cannot pull images (no registry access)
            if (env.get("MARKETPIPE_TEST_BROKER") or "auto").lower() == "docker":
                raise pytest.UsageError(f"marketpipe.testing: the Docker broker cannot start: {_one_line(exc)}") from None
            print(f"marketpipe.testing: Docker answers but its broker cannot start ({_one_line(exc)}); "
                  "using the local launcher", file=sys.stderr)
            broker = start_local_broker(home)
            broker.kind = "local (docker failed)"
            return broker
    return start_local_broker(home)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


_BROKER_KIND = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = start_broker(os.environ, tmp_path_factory.mktemp("kafka-home"))
    request.config.stash[_BROKER_KIND] = f"{broker.kind} at {broker.bootstrap}"
    print(f"marketpipe.testing: Kafka broker {broker.kind} at {broker.bootstrap}", file=sys.stderr)
    try:
        yield broker
    finally:
        broker.stop()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    kind = config.stash.get(_BROKER_KIND, None)
    if kind:
        terminalreporter.write_line(f"marketpipe.testing: Kafka broker {kind}")


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker) -> str:
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def schema_registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Schema Registry for the session (subjects are per topic, and topics are per test)."""
    external = os.environ.get("MARKETPIPE_TEST_REGISTRY_URL")
    if external:
        yield external
        return
    from marketpipe import settings
    from marketpipe.kafka.local import LauncherError
    from marketpipe.registry_local import LocalRegistry

    cache = settings.load(os.environ).local.cache_home / "marketpipe"
    registry = LocalRegistry(tmp_path_factory.mktemp("registry-home"), cache, port=free_port(),
                             progress=lambda msg: print(msg, file=sys.stderr))
    try:
        url = registry.up()
    except LauncherError as exc:
        raise pytest.UsageError(f"marketpipe.testing: the local Schema Registry cannot start: {exc}") from None
    print(f"marketpipe.testing: Schema Registry (Apicurio, local) at {url}", file=sys.stderr)
    try:
        yield url
    finally:
        registry.down()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def mp_env(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> dict[str, str]:
    """Environment for marketpipe code or subprocesses under test: the session broker, a
    private topic prefix, a private home, no metrics port conflicts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_", "SCHEMA_REGISTRY"))}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MARKETPIPE_TOPIC_PREFIX": topic_prefix,
        "MARKETPIPE_HOME": str(tmp_path / "home"),
        "MARKETPIPE_METRICS_PORT": "-1",
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture
def mp_settings(mp_env: dict[str, str]) -> Iterator[Any]:
    """Settings for the test's private namespace, with every declared topic created (and deleted
    afterwards: one broker serves the whole session, and every partition holds open files)."""
    from marketpipe import settings
    from marketpipe.kafka import topics

    s = settings.load(mp_env)
    topics.create_topics(s.kafka.client_config(), prefix=s.topic_prefix)
    yield s
    delete_topics_of(s.kafka.client_config(), s.topic_prefix)


def delete_topics_of(client_config: Mapping[str, Any], prefix: str) -> None:
    """Delete every topic of a test's namespace: its prefixed topics and the ones apps named after
    it (Faust's own, whose names carry the prefix inside). Best effort: a leftover is no failure."""


    tag = prefix.rstrip(".")
    if not tag:
        return
    admin = clients.admin(client_config)
    try:
        names = [t for t in admin.list_topics(timeout=10).topics if tag in t]
        if names:
            for future in admin.delete_topics(names, operation_timeout=10).values():
                future.exception(timeout=15)
    except Exception as exc:  # the broker may be gone already (outage tests stop their own)
        print(f"marketpipe.testing: topics of {prefix} not deleted: {exc}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Processes (one copy, used by the fixtures below and by marketpipe's own integration tests)


def start_worker(env: Mapping[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """A processor worker (``marketpipe process``) with 1 s bars, in its own process group, for
    simulator feeds: they trade every day, so its clock times are dated on the day they are sent
    (``--trading-calendar every-day``; pass ``--trading-calendar exchange`` in ``args`` for the real one)."""
    return subprocess.Popen([sys.executable, "-m", "marketpipe", "process", "--bar-interval", "1s",
                             "--bar-grace", "300ms", "--trading-calendar", "every-day", *args], env=dict(env),
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def start_producer(env: Mapping[str, str], provider: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "marketpipe", "produce", provider, *args], env=dict(env),
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def stop_worker(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal the process group; SIGKILL it if it has not exited after 60 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_for(cond: Callable[[], Any], timeout: float = 30.0, step: float = 0.2,
             what: str | Callable[[], str] = "condition") -> None:
    """Return as soon as ``cond()`` is true; AssertionError naming ``what`` (a text, or a function
    giving one, e.g. with log tails) when it is still false after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not met in {timeout:g} s: {what() if callable(what) else what}")
        time.sleep(step)  # the polling step, not a wait


def read_topic(s: Any, logical: str, idle: float = 3.0, until: int | None = None,
               timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every record of a topic from the beginning as codec dicts, until ``idle`` seconds pass
    without one, ``until`` records were read, or ``timeout``. With ``until`` the idle time counts
    from the first record: a process that is still starting (slow on a loaded machine) has not
    gone quiet."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from marketpipe.schemas.codec import from_settings

    topic = s.topic(logical)
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    codec = from_settings(s)  # either framing; Confluent ids through s's registry
    out: list[dict[str, Any]] = []
    start = last = time.monotonic()
    while (time.monotonic() - last < idle or (until is not None and not out)) and time.monotonic() - start < timeout:
        for msg in consumer.consume(1000, timeout=0.3):
            if not msg.error():
                out.append(codec.decode(msg.value()).record)
                last = time.monotonic()
        if until is not None and len(out) >= until:
            break
    consumer.close()
    return out


# ---------------------------------------------------------------------------------------------
# Simulators and a running pipeline


@pytest.fixture
def mp_simulator() -> Iterator[Callable[..., Any]]:
    """``mp_simulator(provider, **options)``: a running simulator (see ``marketpipe.simulators.runner``),
    stopped when the test ends."""
    from marketpipe.simulators.runner import run

    running: list[Any] = []

    def start(provider: str, **options: Any) -> Any:
        sim = run(provider, **options)
        running.append(sim)
        return sim

    yield start
    for sim in reversed(running):
        sim.stop()


@dataclass
class Pipeline:
    """Simulators -> producers -> processor, as the real processes, on the test's namespace."""

    env: dict[str, str]
    settings: Any
    workdir: Path
    simulator: Callable[..., Any]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    simulators: dict[str, Any] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def start(self, jvquant: Sequence[str] = ("600519", "000001"), infoway: Sequence[str] = (),
              rate: int = 100, processor: bool = True) -> "Pipeline":
        """Start a simulator and a producer per provider given (jvQuant codes like ``600519``,
        Infoway symbols like ``BTCUSDT``) and, unless ``processor=False``, one processor worker."""
        if processor:  # consumers first: the worker joins its group while nothing queues up yet
            self.processes["processor"] = start_worker(self.env, self.log("processor"))
        if jvquant:
            sim = self.simulators["jvquant"] = self.simulator("jvquant", rate=rate, symbols=list(jvquant))
            env = {**self.env, "JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": "test-token"}
            self.processes["producer-jvquant"] = start_producer(
                env, "jvquant", self.log("producer-jvquant"), "--codes", ",".join(jvquant), "--levels", "lv1,lv2")
        if infoway:
            sim = self.simulators["infoway"] = self.simulator("infoway", rate=rate, symbols=list(infoway),
                                                              api_key="test-key")
            env = {**self.env, "INFOWAY_WS_URL": sim.url, "INFOWAY_API_KEY": "test-key"}
            self.processes["producer-infoway"] = start_producer(
                env, "infoway", self.log("producer-infoway"), "--codes", ",".join(infoway))
        return self

    def consumer(self, topics: Sequence[str], **options: Any) -> Any:
        """A :class:`marketpipe.client.TopicConsumer` on this pipeline's topics (from the earliest
        record unless ``start`` says otherwise)."""
        from marketpipe.client import TopicConsumer

        options.setdefault("start", "earliest")
        return TopicConsumer(list(topics), settings=self.settings, **options)

    def wait_for_records(self, topic: str, symbol: str | None = None, n: int = 1, timeout: float = 60.0) -> list[Any]:
        """The first ``n`` records of ``topic`` (for ``symbol``), or AssertionError with the logs."""
        out: list[Any] = []
        with self.consumer([topic], symbols=[symbol] if symbol else None) as consumer:
            deadline = time.monotonic() + timeout
            while len(out) < n and time.monotonic() < deadline:
                self._check_alive()
                out += consumer.consume(n - len(out), timeout=min(1.0, max(0.0, deadline - time.monotonic())))
        if len(out) < n:
            raise AssertionError(f"{len(out)} of {n} {topic} records for {symbol or 'any symbol'} in {timeout:g} s\n"
                                 + self.log_tails())
        return out[:n]

    def wait_for_ticks(self, symbol: str | None = None, n: int = 10, timeout: float = 60.0) -> list[Any]:
        """The first ``n`` trades (``marketpipe.client.Tick``) of ``symbol`` on md.tick."""
        return self.wait_for_records("md.tick", symbol, n, timeout)

    def wait_for_quotes(self, symbol: str | None = None, n: int = 1, timeout: float = 60.0) -> list[Any]:
        return self.wait_for_records("md.quote", symbol, n, timeout)

    def _check_alive(self) -> None:
        dead = {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"pipeline process exited: {dead}\n" + self.log_tails())

    def log_tails(self, chars: int = 1500) -> str:
        parts = []
        for name in self.processes:
            try:
                parts.append(f"--- {name} ---\n{self.log(name).read_text(errors='replace')[-chars:]}")
            except OSError:
                pass
        return "\n".join(parts)

    def stop(self) -> None:
        """Producers first, so the processor drains what they wrote; then the processor."""
        for name in sorted(self.processes, key=lambda n: n == "processor"):
            stop_worker(self.processes[name])
        self.processes.clear()


@pytest.fixture
def mp_pipeline(mp_env: dict[str, str], mp_settings: Any, mp_simulator: Callable[..., Any],
                tmp_path: Path) -> Iterator[Pipeline]:
    """Not started yet: call ``mp_pipeline.start(...)``; everything stops when the test ends."""
    workdir = tmp_path / "pipeline"
    workdir.mkdir()
    pipeline = Pipeline(mp_env, mp_settings, workdir, mp_simulator)
    try:
        yield pipeline
    finally:
        pipeline.stop()
