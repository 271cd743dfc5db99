"""marketpipe kafka up|down|status and marketpipe topics create|check|list.

Where the broker comes from, in order: KAFKA_BOOTSTRAP_SERVERS (someone runs it) →
a Docker engine (the kafka service of docker-compose.yml) → the local launcher
(Apache Kafka jars from Maven Central on Java 17, see marketpipe/kafka_local.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from marketpipe.localhost import docker_engine_answers
from marketpipe.resources import resource
from marketpipe.settings import Settings


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def local_broker(settings: Settings, secure: bool = False):
    """The local launcher's broker; secured when asked, or when this home's broker was made so
    (its data holds SCRAM users only a secured listener can use)."""
    from marketpipe.kafka_local import LocalKafka
    from marketpipe.kafka_security import BrokerSecurity

    security = BrokerSecurity.of_home(settings.home)
    return LocalKafka(home=settings.home, port=settings.kafka_port, controller_port=settings.kafka_port + 1,
                      heap=settings.kafka_heap, progress=_say, cache_dir=settings.local.cache_home / "marketpipe",
                      pom=settings.local.kafka_pom, security=security if secure or security.exists() else None)


def local_cluster(settings: Settings, brokers: int):
    """The local launcher's cluster of ``brokers`` nodes: on the ports this home's cluster was
    started on, else node 1 on MARKETPIPE_KAFKA_PORT and the others after it."""
    from marketpipe.kafka_cluster import LocalCluster, cluster_layout, saved_layout

    layout = saved_layout(settings.home)
    if layout is None or len(layout.nodes) != brokers:
        layout = cluster_layout(brokers, settings.kafka_port)
    return LocalCluster(settings.home, layout, heap=settings.kafka_node_heap,
                        progress=_say, cache_dir=settings.local.cache_home / "marketpipe", pom=settings.local.kafka_pom)


def local_brokers(settings: Settings) -> int:
    """How many brokers the local launcher runs in this home (1 when it made none yet)."""
    from marketpipe.kafka_cluster import existing_brokers

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


def _compose(compose: list[str], settings: Settings, *args: str) -> int:
    # Compose reads the whole file, and the trader's service demands the signing key; starting or
    # stopping only the broker uses no key, so a placeholder satisfies the file
    env = {**os.environ, "KAFKA_HOST_PORT": str(settings.kafka_port)}  # where kafka up says the broker is
    env.setdefault("MARKETPIPE_ORDER_SIGNING_KEY", "unused-by-the-kafka-service")
    return subprocess.run([*compose, "-f", str(resource("docker-compose.yml")), *args], env=env).returncode


def _metadata(settings: Settings, timeout: float):
    from confluent_kafka.admin import AdminClient

    from marketpipe.quietlog import rdkafka_logger

    if settings.kafka.security_protocol != "PLAINTEXT":
        from marketpipe.kafka_security import refusal

        # a refused login would otherwise wait out the whole timeout before saying so
        if (why := refusal(settings.kafka.client_config(), timeout=timeout)) is not None:
            raise SystemExit(f"marketpipe: Kafka at {settings.kafka.bootstrap_servers}: {why}")
    # librdkafka's retry lines go to Python logging (only served on poll, i.e. never here) instead
    # of stderr: a dead broker is reported once, by whoever catches the exception
    return AdminClient({**settings.kafka.client_config(), **rdkafka_logger()}).list_topics(timeout=timeout)


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    if args.brokers != 1:
        return up_cluster(settings, brokers=args.brokers, secure=args.secure, timeout=args.timeout)
    return up(settings, local=args.local, secure=args.secure, timeout=args.timeout)


def up_cluster(settings: Settings, *, brokers: int, secure: bool = False, timeout: float = 120.0) -> int:
    """Start (or find) a local cluster of ``brokers`` nodes; prints its bootstrap list."""
    from marketpipe.kafka_local import LauncherError

    if settings.kafka.external:
        _say("KAFKA_BOOTSTRAP_SERVERS is set: that cluster is someone else's; --brokers starts a local one "
             "(unset KAFKA_BOOTSTRAP_SERVERS)")
        return 1
    if secure:
        _say("marketpipe kafka up: --secure runs a single broker only; drop --brokers or --secure")
        return 1
    if brokers < 1:
        _say("marketpipe kafka up: --brokers must be 1 or more")
        return 1
    try:
        print(local_cluster(settings, brokers).up(timeout=timeout))
    except LauncherError as exc:
        _say(f"marketpipe kafka up: {exc}")
        return 1
    return 0


def up(settings: Settings, *, local: bool = False, secure: bool = False, timeout: float = 120.0) -> int:
    """Start (or find) the broker the settings name; prints its bootstrap address. 0 when it answers."""
    from marketpipe.kafka_cluster import layout_mismatch
    from marketpipe.kafka_local import LauncherError

    if settings.kafka.external:
        try:
            md = _metadata(settings, 15)
        except Exception as exc:  # report any client failure plainly
            _say(f"KAFKA_BOOTSTRAP_SERVERS={settings.kafka.bootstrap_servers} does not answer: {exc}")
            return 1
        _say(f"using the broker(s) in KAFKA_BOOTSTRAP_SERVERS ({len(md.brokers)} broker(s) answer)")
        print(settings.kafka.bootstrap_servers)
        return 0
    # the compose service has no secured form: --secure always means the local launcher
    compose = None if local or secure else compose_kafka_ready()
    if compose is not None:
        _say("a Docker engine answers and marketpipe/kafka:local is built: starting the compose service 'kafka'")
        if _compose(compose, settings, "up", "-d", "kafka") != 0:
            return 1
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if _metadata(settings, 3).brokers:
                    print(settings.kafka.bootstrap_servers)
                    return 0
            except Exception:  # still booting
                time.sleep(1)
        _say("the kafka container did not become ready in 90 s (docker compose logs kafka)")
        return 1
    from marketpipe.kafka_security import SecurityError

    if (why := layout_mismatch(settings.home, 1)) is not None:
        _say(f"marketpipe kafka up: {why}")
        return 1
    try:
        broker = local_broker(settings, secure=secure)
        print(broker.up(timeout=timeout))
    except (LauncherError, SecurityError) as exc:
        _say(f"marketpipe kafka up: {exc}")
        return 1
    if broker.security is not None:  # where each component's credentials are; no password printed
        _say(broker.security.instructions(broker.bootstrap))
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    if settings.kafka.external:
        _say("KAFKA_BOOTSTRAP_SERVERS is set: that broker is not ours to stop")
        return 0
    if (brokers := local_brokers(settings)) > 1:
        _say("Kafka cluster stopped" if local_cluster(settings, brokers).down() else "no local Kafka node was running")
        return 0
    local = local_broker(settings)
    if local.down():
        _say("Kafka stopped")
    elif not args.local and (compose := compose_kafka_ready()) is not None:
        return _compose(compose, settings, "stop", "kafka")
    else:
        _say("no local Kafka broker was running")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    if settings.kafka.external:
        try:
            md = _metadata(settings, 10)
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


def cmd_topics_create(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe import topics

    try:
        result = topics.create_topics(settings.kafka.client_config(), prefix=settings.topic_prefix,
                                      replication_factor=args.replication_factor)
    except Exception as exc:  # a broker problem must read as one line
        _say(f"marketpipe topics create: {exc} (is the broker up? `marketpipe kafka up`)")
        return 1
    for name, state in result.items():
        spec = topics.by_name(name[len(settings.topic_prefix):])
        print(f"{state:8} {name:32} partitions={spec.partitions} " +
              " ".join(f"{k}={v}" for k, v in spec.config.items()))
    return 0


def cmd_topics_check(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe import durability, topics

    names = [settings.topic(spec.name) for spec in topics.TOPICS]
    try:
        brokers, facts = durability.cluster_facts(settings.kafka.client_config(), names)
    except Exception as exc:  # a broker problem must read as one line
        _say(f"marketpipe topics check: {' '.join(str(exc).split())[:200]} (is the broker up? `marketpipe kafka up`)")
        return 1
    findings = durability.topic_findings(facts, brokers, allow_single_broker=args.allow_single_broker)
    findings += durability.producer_findings()
    for finding in findings:
        print(finding)
    single = args.allow_single_broker and brokers == 1
    if single:
        _say("one broker: replication factor 1 and min.insync.replicas 1 accepted (--allow-single-broker); "
             "a development setup, an acknowledged record lives on one disk only")
    if findings:
        _say(f"{len(findings)} finding(s): weaker than RF {durability.DURABLE_REPLICAS}, min.insync.replicas "
             f"{durability.DURABLE_MIN_INSYNC}, no unclean election, idempotent acks=all producers "
             f"({brokers} broker(s))")
        return 1
    _say(f"{len(names)} topics on {brokers} broker(s) and every producer config: "
         + ("single-broker default accepted" if single else "durable"))
    return 0


def cmd_topics_list(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe import topics
    from marketpipe.quietlog import FIRST_ANSWER_SECONDS

    md = _metadata(settings, FIRST_ANSWER_SECONDS)
    for spec in topics.TOPICS:
        name = settings.topic(spec.name)
        present = md.topics.get(name)
        state = f"{len(present.partitions)} partitions" if present else "missing"
        print(f"{name:32} {state:16} {spec.doc}")
    return 0


def cmd_topics_acl(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe import access

    wanted = list(access.rules(settings))
    for rule in wanted:
        print(rule)
    if args.dry_run:
        return 0
    try:
        access.apply(settings.kafka.client_config(), wanted)
    except Exception as exc:  # a refusal (not the admin principal) or a dead broker: one line
        err = exc.args[0] if exc.args else None
        name = getattr(err, "name", None)
        why = name() if callable(name) else " ".join(str(exc).split())[:200]
        _say(f"marketpipe topics acl: {why} (creating ACLs needs a super user: the admin principal)")
        return 1
    _say(f"{len(wanted)} ACLs in place for prefix {settings.topic_prefix!r}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    kafka = sub.add_parser("kafka", help="start, stop or inspect the Kafka broker",
                           description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ksub = kafka.add_subparsers(dest="kafka_command", metavar="ACTION", required=True)
    up = ksub.add_parser("up", help="start a single-node KRaft broker, or --brokers 3 nodes (idempotent), and print the "
                                      "bootstrap address")
    up.add_argument("--local", action="store_true", help="use the local launcher even if a Docker engine answers")
    up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness (default 90)")
    up.add_argument("--secure", action="store_true",
                    help="SASL_SSL listener, a local CA, SCRAM users per component and ACLs enforced "
                         "(marketpipe/kafka_security.py); prints where each component's settings are")
    up.add_argument("--brokers", type=int, default=1, metavar="N",
                    help="start a local cluster of N KRaft nodes (e.g. 3) instead of one broker: each node is "
                         "broker and controller, in <home>/kafka/node-<i>, on ports MARKETPIPE_KAFKA_PORT+2(i-1) "
                         "(client) and the next one (controller), with heap MARKETPIPE_KAFKA_NODE_HEAP "
                         "(default -Xms128m -Xmx384m per node; about 370 MB resident per node measured with the "
                         "declared topics at RF 3). With 3 or more: RF 3, min.insync.replicas=2, no unclean leader "
                         "election. Prints the bootstrap list of all nodes")
    up.set_defaults(func=cmd_up)
    down = ksub.add_parser("down", help="stop the broker (or every node of the cluster) started by `kafka up`")
    down.add_argument("--local", action="store_true", help="only the local launcher's broker")
    down.set_defaults(func=cmd_down)
    status = ksub.add_parser("status", help="say whether the broker runs (exit 0) or not (exit 1); for a local "
                                            "cluster each node, the active controller and under-replicated "
                                            "partitions")
    status.set_defaults(func=cmd_status)

    tp = sub.add_parser("topics", help="create or list the declared topics (marketpipe/topics.py)")
    tsub = tp.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    create = tsub.add_parser("create", help="create every declared topic that does not exist yet")
    create.add_argument("--replication-factor", type=int, default=-1,
                        help="replicas per partition (default: the broker's default.replication.factor)")
    create.set_defaults(func=cmd_topics_create)
    check = tsub.add_parser(
        "check", help="report every topic or producer setting too weak to survive losing a broker; exit 1 if any",
        description="Lists, one line each, every declared topic with fewer than 3 replicas, "
                    "min.insync.replicas below 2 or unclean leader election on, and every producer config "
                    "marketpipe builds without enable.idempotence=true and acks=all. Exit 0 when there is "
                    "none, 1 otherwise.")
    check.add_argument("--allow-single-broker", action="store_true",
                       help="on a one-broker cluster accept replication factor 1 and min.insync.replicas 1 "
                            "(the local development default); changes nothing on a cluster")
    check.set_defaults(func=cmd_topics_check)
    lst = tsub.add_parser("list", help="show the declared topics and whether they exist")
    lst.set_defaults(func=cmd_topics_list)
    acl = tsub.add_parser("acl", help="grant each component what marketpipe/access.py declares (needs the admin "
                                      "principal)")
    acl.add_argument("--dry-run", action="store_true", help="print the ACLs without creating them")
    acl.set_defaults(func=cmd_topics_acl)
