"""The broker the settings name: found or started, stopped, and asked whether it runs.

Where the broker comes from, in order: KAFKA_BOOTSTRAP_SERVERS (someone runs it) →
a Docker engine (the kafka service of docker-compose.yml) → the local launcher
(Apache Kafka jars from Maven Central on Java 17, :mod:`marketpipe.kafka.local`).
Progress goes to stderr; ``up`` prints the bootstrap address on stdout, for ``$(...)``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from marketpipe.kafka import clients
from marketpipe.runtime.localhost import docker_engine_answers
from marketpipe.runtime.resources import resource
from marketpipe.settings import Settings


def say(msg: str) -> None:
    """Progress for the user, on stderr (stdout carries results)."""
    print(msg, file=sys.stderr, flush=True)


def local_broker(settings: Settings, secure: bool = False):
    """The local launcher's broker; secured when asked, or when this home's broker was made so
    (its data holds SCRAM users only a secured listener can use)."""
    from marketpipe.kafka.local import LocalKafka
    from marketpipe.kafka.security import BrokerSecurity

    security = BrokerSecurity.of_home(settings.home)
    return LocalKafka(home=settings.home, port=settings.kafka_port, controller_port=settings.kafka_port + 1,
                      heap=settings.kafka_heap, progress=say, cache_dir=settings.local.cache_home / "marketpipe",
                      pom=settings.local.kafka_pom, security=security if secure or security.exists() else None)


def local_cluster(settings: Settings, brokers: int):
    """The local launcher's cluster of ``brokers`` nodes: on the ports this home's cluster was
    started on, else node 1 on MARKETPIPE_KAFKA_PORT and the others after it."""
    from marketpipe.kafka.cluster import LocalCluster, cluster_layout, saved_layout

    layout = saved_layout(settings.home)
    if layout is None or len(layout.nodes) != brokers:
        layout = cluster_layout(brokers, settings.kafka_port)
    return LocalCluster(settings.home, layout, heap=settings.kafka_node_heap,
                        progress=say, cache_dir=settings.local.cache_home / "marketpipe", pom=settings.local.kafka_pom)


def local_brokers(settings: Settings) -> int:
    """How many brokers the local launcher runs in this home (1 when it made none yet)."""
    from marketpipe.kafka.cluster import existing_brokers

    return existing_brokers(settings.home) or 1


def compose_command() -> list[str] | None:
    """How to run Compose here: the v2 plugin (``docker compose``), else v1 (``docker-compose``)."""
    try:
        if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=20).returncode == 0:
            return ["docker", "compose"]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return ["docker-compose"] if shutil.which("docker-compose") else None


def compose_kafka_ready() -> list[str] | None:
    """The Compose command when the compose service 'kafka' can start: an engine answers, Compose is
    installed and the broker image is built (``make images``); None sends ``kafka up`` to the local
    launcher instead."""
    if not docker_engine_answers():
        return None
    compose = compose_command()
    if compose is None:
        return None
    try:
        built = subprocess.run(["docker", "image", "inspect", "marketpipe/kafka:local"], capture_output=True,
                               timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        built = False
    return compose if built else None


def run_compose(compose: list[str], settings: Settings, *args: str) -> int:
    # Compose reads the whole file, and the trader's service demands the signing key; starting or
    # stopping only the broker uses no key, so a placeholder satisfies the file
    env = {**os.environ, "KAFKA_HOST_PORT": str(settings.kafka_port)}  # where kafka up says the broker is
    env.setdefault("MARKETPIPE_ORDER_SIGNING_KEY", "unused-by-the-kafka-service")
    return subprocess.run([*compose, "-f", str(resource("docker-compose.yml")), *args], env=env).returncode


def metadata(settings: Settings, timeout: float):
    if settings.kafka.security_protocol != "PLAINTEXT":
        from marketpipe.kafka.security import refusal

        # a refused login would otherwise wait out the whole timeout before saying so
        if (why := refusal(settings.kafka.client_config(), timeout=timeout)) is not None:
            raise SystemExit(f"marketpipe: Kafka at {settings.kafka.bootstrap_servers}: {why}")
    # librdkafka's retry lines go to Python logging (only served on poll, i.e. never here) instead
    # of stderr: a dead broker is reported once, by whoever catches the exception
    return clients.admin(settings.kafka.client_config()).list_topics(timeout=timeout)


def up_cluster(settings: Settings, *, brokers: int, secure: bool = False, timeout: float = 120.0) -> int:
    """Start (or find) a local cluster of ``brokers`` nodes; prints its bootstrap list."""
    from marketpipe.kafka.local import LauncherError

    if settings.kafka.external:
        say("KAFKA_BOOTSTRAP_SERVERS is set: that cluster is someone else's; --brokers starts a local one "
            "(unset KAFKA_BOOTSTRAP_SERVERS)")
        return 1
    if secure:
        say("marketpipe kafka up: --secure runs a single broker only; drop --brokers or --secure")
        return 1
    if brokers < 1:
        say("marketpipe kafka up: --brokers must be 1 or more")
        return 1
    try:
        print(local_cluster(settings, brokers).up(timeout=timeout))
    except LauncherError as exc:
        say(f"marketpipe kafka up: {exc}")
        return 1
    return 0


def up(settings: Settings, *, local: bool = False, secure: bool = False, timeout: float = 120.0) -> int:
    """Start (or find) the broker the settings name; prints its bootstrap address. 0 when it answers."""
    from marketpipe.kafka.cluster import layout_mismatch
    from marketpipe.kafka.local import LauncherError

    if settings.kafka.external:
        try:
            md = metadata(settings, 15)
        except Exception as exc:  # report any client failure plainly
            say(f"KAFKA_BOOTSTRAP_SERVERS={settings.kafka.bootstrap_servers} does not answer: {exc}")
            return 1
        say(f"using the broker(s) in KAFKA_BOOTSTRAP_SERVERS ({len(md.brokers)} broker(s) answer)")
        print(settings.kafka.bootstrap_servers)
        return 0
    # the compose service has no secured form: --secure always means the local launcher
    command = None if local or secure else compose_kafka_ready()
    if command is not None:
        say("a Docker engine answers and marketpipe/kafka:local is built: starting the compose service 'kafka'")
        if run_compose(command, settings, "up", "-d", "kafka") != 0:
            return 1
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if metadata(settings, 3).brokers:
                    print(settings.kafka.bootstrap_servers)
                    return 0
            except Exception:  # still booting
                time.sleep(1)
        say("the kafka container did not become ready in 90 s (docker compose logs kafka)")
        return 1
    from marketpipe.kafka.security import SecurityError

    if (why := layout_mismatch(settings.home, 1)) is not None:
        say(f"marketpipe kafka up: {why}")
        return 1
    try:
        broker = local_broker(settings, secure=secure)
        print(broker.up(timeout=timeout))
    except (LauncherError, SecurityError) as exc:
        say(f"marketpipe kafka up: {exc}")
        return 1
    if broker.security is not None:  # where each component's credentials are; no password printed
        say(broker.security.instructions(broker.bootstrap))
    return 0


def down(settings: Settings, *, local: bool = False) -> int:
    """Stop the broker ``up`` started (the local launcher's, else the compose service unless
    ``local``); 0 also when none ran. A broker named by KAFKA_BOOTSTRAP_SERVERS is left alone."""
    if settings.kafka.external:
        say("KAFKA_BOOTSTRAP_SERVERS is set: that broker is not ours to stop")
        return 0
    if (brokers := local_brokers(settings)) > 1:
        say("Kafka cluster stopped" if local_cluster(settings, brokers).down() else "no local Kafka node was running")
        return 0
    launcher = local_broker(settings)
    if launcher.down():
        say("Kafka stopped")
    elif not local and (command := compose_kafka_ready()) is not None:
        return run_compose(command, settings, "stop", "kafka")
    else:
        say("no local Kafka broker was running")
    return 0


def status(settings: Settings) -> int:
    """Print whether the broker runs: 0 when it does, 1 when not."""
    if settings.kafka.external:
        try:
            md = metadata(settings, 10)
            print(f"running: {settings.kafka.bootstrap_servers} ({len(md.brokers)} broker(s), {len(md.topics)} topics)")
            return 0
        except Exception as exc:
            print(f"not reachable: {settings.kafka.bootstrap_servers}: {exc}")
            return 1
    if (brokers := local_brokers(settings)) > 1:
        cluster = local_cluster(settings, brokers).status()
        print(f"{'running' if cluster.running else 'degraded' if any(n.running for n in cluster.nodes) else 'stopped'}"
              f": {cluster.bootstrap} ({brokers} nodes)")
        for line in cluster.lines():
            print(f"  {line}")
        return 0 if cluster.running else 1
    st = local_broker(settings).status()
    print(f"{'running' if st.running else 'stopped'}: {st.bootstrap} — {st.detail}; log: {st.log}")
    return 0 if st.running else 1
