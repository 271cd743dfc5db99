"""The pipeline on a broker that demands TLS, SCRAM logins and ACLs (`marketpipe kafka up --secure`).

The module starts its own secured broker from the Kafka jars (the session broker is a plain one),
through the command line an operator uses, so these tests run the same on both CI paths. Each
component logs in as its own user with the grants of marketpipe/kafka/access.py applied by
`marketpipe topics acl`; what it may not do is refused by the broker, not by our code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from marketpipe import settings as settings_mod
from marketpipe.kafka import topics
from marketpipe.kafka.security import ADMIN, BrokerSecurity
from marketpipe.runtime.localhost import free_port
from marketpipe.testing import delete_topics_of, start_producer, start_worker, stop_worker, wait_for


@dataclass
class SecureBroker:
    bootstrap: str
    security: BrokerSecurity
    home: Path
    up_output: str  # what `kafka up --secure` printed (stdout and stderr)

    def env(self, user: str, prefix: str, home: Path) -> dict[str, str]:
        """A client's environment: this broker, ``user``'s login (password by file), a namespace."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_", "SCHEMA_REGISTRY"))}
        env.update(self.security.client_env(user))
        env.update({"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "MARKETPIPE_TOPIC_PREFIX": prefix,
                    "MARKETPIPE_HOME": str(home), "MARKETPIPE_METRICS_PORT": "-1", "PYTHONUNBUFFERED": "1"})
        return env

    def secrets(self) -> list[str]:
        found = [self.security.password(u) for u in self.security.users]
        found.append((self.security.dir / "keystore.password").read_text().strip())
        key = (self.security.dir / "broker.key").read_text()
        found.append(key.splitlines()[1])  # a line of the broker's private key
        return found


def _cli(env: dict[str, str], *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marketpipe", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    home = tmp_path_factory.mktemp("secure-kafka")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_"))}
    env.update({"MARKETPIPE_HOME": str(home), "MARKETPIPE_KAFKA_PORT": str(port)})
    up = _cli(env, "kafka", "up", "--local", "--secure")
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield SecureBroker(up.stdout.strip(), BrokerSecurity.of_home(home), home, up.stdout + up.stderr)
    finally:
        _cli(env, "kafka", "down", "--local", timeout=60)


@pytest.fixture
def namespace(secure_broker: SecureBroker, tmp_path: Path) -> Iterator[str]:
    """A topic prefix with every declared topic and the declared ACLs, made by the admin user
    through the command line."""
    prefix = f"s{uuid.uuid4().hex[:8]}."
    admin = secure_broker.env(ADMIN, prefix, tmp_path / "admin")
    for args in (("topics", "create"), ("topics", "acl")):
        done = _cli(admin, *args)
        assert done.returncode == 0, done.stderr[-2000:]
    yield prefix
    delete_topics_of(settings_mod.load(admin).kafka.client_config(), prefix)


def settings_of(broker: SecureBroker, user: str, prefix: str, home: Path) -> settings_mod.Settings:
    return settings_mod.load(broker.env(user, prefix, home))


def write(s: settings_mod.Settings, logical: str) -> str | None:
    """Write one record to ``logical`` as ``s``'s user: None when the broker took it, else the
    broker's error name. Keyed: a compacted topic takes no record without a key. Not idempotent:
    a principal with no WRITE anywhere could not even get a producer id, and the question here is
    the topic's ACL."""
    from confluent_kafka import Producer

    errors: list[Any] = []
    producer = Producer({**s.kafka.client_config(), "enable.idempotence": False, "acks": "all",
                         "message.timeout.ms": 15000, "log_level": 0})
    producer.produce(s.topic(logical), b"probe", key=b"probe", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(20)
    assert len(errors) == 1, f"no delivery report for {logical}"
    return None if errors[0] is None else errors[0].name()


# who may write where: the positive rows show the denials are ACLs, not a broken login
WRITES: list[tuple[str, str, bool]] = [
    ("producer", "raw.jvquant", True),
    ("producer", topics.MD_STATUS, True),
    ("producer", topics.ORDER_COMMANDS, False),
    ("producer", topics.MD_TICK, False),
    ("sender", topics.ORDER_COMMANDS, True),
    ("sender", topics.ORDER_CONTROL, False),
    ("operator", topics.ORDER_CONTROL, True),
    ("operator", topics.ORDER_COMMANDS, False),
    ("trader", topics.ORDER_EVENTS, True),
    ("trader", topics.ORDER_COMMANDS, False),
    ("processor", topics.MD_TICK, True),
    ("processor", topics.ORDER_COMMANDS, False),
]


def test_each_component_writes_only_where_declared(secure_broker: SecureBroker, namespace: str,
                                                   tmp_path: Path) -> None:
    errors = {(user, topic): write(settings_of(secure_broker, user, namespace, tmp_path), topic)
              for user, topic, _ in WRITES}
    got = {where: error is None or ("AUTHORIZATION_FAILED" not in error and error)
           for where, error in errors.items()}
    assert got == {(user, topic): allowed for user, topic, allowed in WRITES}, errors


def test_a_downstream_reader_cannot_write_anything(secure_broker: SecureBroker, namespace: str,
                                                   tmp_path: Path) -> None:
    reader = settings_of(secure_broker, "reader", namespace, tmp_path)
    refused = {spec.name: write(reader, spec.name) for spec in topics.TOPICS}
    assert refused == {spec.name: "TOPIC_AUTHORIZATION_FAILED" for spec in topics.TOPICS}


def read(s: settings_mod.Settings, logical: str, group: str) -> str | None:
    """Join ``group`` on ``logical`` as ``s``'s user and read one record: None when one arrived,
    else the broker's error name."""
    from confluent_kafka import Consumer

    consumer = Consumer({**s.kafka.client_config(), "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "log_level": 0})
    consumer.subscribe([s.topic(logical)])
    try:
        for _ in range(30):
            msg = consumer.poll(1.0)
            if msg is not None:
                return msg.error().name() if msg.error() else None
        return "nothing read in 30 s"
    finally:
        consumer.close()


# who may read what, each in a group of its own (a reader's throw-away group, the trader's groups)
READS: list[tuple[str, str, str, bool]] = [
    ("reader", topics.MD_TICK, "marketpipe-client-probe", True),
    ("reader", topics.ORDER_EVENTS, "marketpipe-client-probe", True),
    ("reader", topics.ORDER_COMMANDS, "marketpipe-client-probe", False),
    ("reader", topics.ORDER_LEDGER, "marketpipe-client-probe", False),
    ("trader", topics.ORDER_COMMANDS, "marketpipe-trader", True),
    ("trader", topics.ORDER_CONTROL, "marketpipe-trader-control", True),
    ("reader", topics.ORDER_EVENTS, "marketpipe-trader", False),  # a trader group: not the reader's
    ("producer", topics.ORDER_COMMANDS, "marketpipe-client-probe", False),
    ("sender", topics.ORDER_EVENTS, "marketpipe-client-probe", False),
]


def test_each_component_reads_only_what_is_declared(secure_broker: SecureBroker, namespace: str,
                                                    tmp_path: Path) -> None:
    admin = settings_of(secure_broker, ADMIN, namespace, tmp_path)
    for topic in {t for _, t, _, _ in READS}:
        assert write(admin, topic) is None  # something to read
    errors = {}
    for user, topic, group, _ in READS:
        s = settings_of(secure_broker, user, namespace, tmp_path)
        name = s.group_id(group) if group.startswith("marketpipe-trader") else f"{group}-{uuid.uuid4().hex[:6]}"
        errors[(user, topic, group)] = read(s, topic, name)
    # refused means refused by the broker's authorizer, not a timeout
    got = {where: error is None or ("AUTHORIZATION_FAILED" not in error and error)
           for where, error in errors.items()}
    assert got == {(user, topic, group): ok for user, topic, group, ok in READS}, errors


def _untrusted_ca(tmp_path: Path) -> Path:
    """A CA that did not sign the broker's certificate."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key",
                    "-out", "other-ca.pem", "-days", "2", "-subj", "/CN=someone else"], cwd=tmp_path,
                   capture_output=True, check=True)
    return tmp_path / "other-ca.pem"


@pytest.mark.parametrize("command", [("topics", "list"), ("tail", "md.tick", "--idle-exit", "5")])
def test_a_wrong_password_or_an_untrusted_certificate_is_one_line_and_exit_1(
        secure_broker: SecureBroker, namespace: str, tmp_path: Path, command: tuple[str, ...]) -> None:
    env = secure_broker.env("reader", namespace, tmp_path)
    wrong = {**env, "KAFKA_SASL_PASSWORD": "not-the-password"}
    untrusted = {**env, "KAFKA_SSL_CA_LOCATION": str(_untrusted_ca(tmp_path))}
    for bad, says in ((wrong, "authentication failed: the broker refused user 'reader'"),
                      (untrusted, "the broker's certificate is not trusted")):
        done = _cli(bad, *command, timeout=90)
        lines = done.stderr.strip().splitlines()
        assert (done.returncode, len(lines)) == (1, 1), done.stderr[-2000:]
        assert says in lines[0]
    ok = _cli(env, *command, timeout=90)  # the same command with the right settings works
    assert ok.returncode == 0, ok.stderr[-2000:]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


def _every_record(s: settings_mod.Settings) -> bytes:
    """Keys, values and headers of every record on every topic of the namespace, read as admin."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    tag = s.topic_prefix.rstrip(".")
    md = consumer.list_topics(timeout=15).topics
    parts = [TopicPartition(t, p, OFFSET_BEGINNING) for t, meta in md.items() if tag in t for p in meta.partitions]
    consumer.assign(parts)
    out, eof = bytearray(), 0
    while eof < len(parts):
        msgs = consumer.consume(1000, timeout=5)
        if not msgs:
            break
        for msg in msgs:
            if msg.error():
                eof += 1
                continue
            out += (msg.key() or b"") + (msg.value() or b"")
            out += b"".join(k.encode() + (v or b"") for k, v in (msg.headers() or []))
    consumer.close()
    return bytes(out)


def test_the_pipeline_runs_on_the_secured_broker_and_no_secret_leaks(
        secure_broker: SecureBroker, namespace: str, tmp_path: Path,
        mp_simulator: Callable[..., Any]) -> None:
    """simulator -> producer (user producer) -> processor (user processor) -> md.tick read by a
    downstream reader (user reader); then no password or key is in any log, metric or record."""
    from marketpipe.client import TopicConsumer

    logs = {name: tmp_path / f"{name}.log" for name in ("processor", "producer")}
    ports = {name: free_port() for name in logs}
    processor_env = {**secure_broker.env("processor", namespace, tmp_path / "processor"),
                     "MARKETPIPE_METRICS_PORT": str(ports["processor"])}
    worker = start_worker(processor_env, logs["processor"])
    sim = mp_simulator("jvquant", rate=100, symbols=["600519"])
    token = f"tok-{uuid.uuid4().hex}"  # the provider's secret: as unwelcome in a log as a password
    producer_env = {**secure_broker.env("producer", namespace, tmp_path / "producer"),
                    "MARKETPIPE_METRICS_PORT": str(ports["producer"]),
                    "JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": token}
    producer = start_producer(producer_env, "jvquant", logs["producer"], "--codes", "600519", "--levels", "lv1,lv2")

    def tails() -> str:
        return "\n".join(f"--- {n} ---\n{p.read_text(errors='replace')[-1500:]}" for n, p in logs.items())

    try:
        reader = settings_of(secure_broker, "reader", namespace, tmp_path / "reader")
        ticks: list[Any] = []
        with TopicConsumer([topics.MD_TICK], settings=reader, start="earliest") as consumer:
            def enough() -> bool:
                assert worker.poll() is None and producer.poll() is None, tails()
                ticks.extend(consumer.consume(10, timeout=1.0))
                return len(ticks) >= 5

            wait_for(enough, 120, what=lambda: f"5 ticks on md.tick as the reader, got {len(ticks)}\n{tails()}")
        assert {t.symbol for t in ticks} == {"600519.SH"}
        metrics = {name: _scrape(port) for name, port in ports.items()}
    finally:
        stop_worker(producer)
        stop_worker(worker)

    admin = settings_of(secure_broker, ADMIN, namespace, tmp_path / "admin")
    where = {**{f"{n} log": p.read_text(errors="replace") for n, p in logs.items()},
             **{f"{n} metrics": text for n, text in metrics.items()},
             "broker log": (secure_broker.home / "kafka" / "broker.log").read_text(errors="replace"),
             "kafka up output": secure_broker.up_output,
             "records": _every_record(admin).decode("latin-1")}
    assert "marketpipe_" in metrics["processor"] and "marketpipe_" in metrics["producer"]
    leaks = [f"{i} in {place}" for i, secret in enumerate([*secure_broker.secrets(), token])
             for place, text in where.items() if secret in text]
    assert leaks == []


def test_a_topic_the_user_may_not_read_is_said_so_in_one_line(secure_broker: SecureBroker, namespace: str,
                                                              tmp_path: Path) -> None:
    done = _cli(secure_broker.env("reader", namespace, tmp_path), "tail", "order.commands", "--idle-exit", "5",
                timeout=90)
    lines = done.stderr.strip().splitlines()
    assert (done.returncode, len(lines)) == (1, 1), done.stderr[-2000:]
    assert f"reader may not read '{namespace}order.commands'" in lines[0]


def test_an_order_goes_through_on_the_secured_broker_each_party_as_itself(
        secure_broker: SecureBroker, namespace: str, tmp_path: Path) -> None:
    """sender -> order.commands -> trader (user trader) -> jvQuant trade simulator -> order.events
    read by a downstream reader: the trade path's grants are enough, and none is missing."""
    import json

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from marketpipe.providers.jvquant.trade_simulator import TradeCounter
    from marketpipe.schemas.codec import Codec
    from marketpipe.simulators.runner import run as run_sim
    from marketpipe.trader import commands

    key, account = "secure-test-signing-key", "000000000042"
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps({"600519.SH": {"prev_close": "1500.00", "name": "贵州茅台"}}, ensure_ascii=False))
    counter = TradeCounter(fill_seconds=0.5)
    log = tmp_path / "trader.log"
    with run_sim("jvquant", rate=1, extra_routes=counter.add_routes) as sim:
        env = {**secure_broker.env("trader", namespace, tmp_path / "trader"),
               "JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": "tok", "JVQUANT_TRADE_ACCOUNT": account,
               "JVQUANT_TRADE_PASSWORD": "pw", "MARKETPIPE_ORDER_SIGNING_KEY": key,
               "MARKETPIPE_TRADER_REFERENCE": str(reference), "MARKETPIPE_TRADER_POLL_SECONDS": "0.3"}

        def start_trader(ready: int) -> subprocess.Popen[bytes]:
            """A trader, returned once it has logged its ``ready``-th "trader ready"."""
            proc = subprocess.Popen([sys.executable, "-m", "marketpipe", "trade"], env=env, stdout=open(log, "ab"),
                                    stderr=subprocess.STDOUT, start_new_session=True)
            wait_for(lambda: log.read_text(errors="replace").count("trader ready") >= ready or proc.poll() is not None,
                     90, what=lambda: log.read_text(errors="replace")[-2000:])
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            return proc

        trader = start_trader(1)
        try:
            cmd = commands.place(account, "600519.SH", "buy", "1500.00", 100, key)
            commands.send(settings_of(secure_broker, "sender", namespace, tmp_path / "sender"), cmd)
            reader = settings_of(secure_broker, "reader", namespace, tmp_path / "reader")
            consumer = Consumer({**reader.kafka.client_config(), "group.id": f"marketpipe-client-{uuid.uuid4().hex[:6]}",
                                 "enable.auto.commit": False})
            topic = reader.topic(topics.ORDER_EVENTS)
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                             for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions])
            codec, states = Codec(), []

            def filled() -> bool:
                for msg in consumer.consume(100, timeout=0.5):
                    if not msg.error():
                        event = codec.decode(msg.value(), expect="OrderEvent").record
                        if event["command_id"] == cmd["command_id"]:
                            states.append(event["state"])
                return "FILLED" in states

            try:
                wait_for(filled, 60, what=lambda: f"FILLED on order.events; states {states}; trader log:\n"
                         + log.read_text(errors="replace")[-2000:])
            finally:
                consumer.close()
            # a restarted trader reads its ledger back (empty at the first start, it needed no READ)
            stop_worker(trader)
            trader = start_trader(2)
            assert "ledger loaded: 1 commands" in log.read_text(errors="replace"), log.read_text()[-2000:]
        finally:
            stop_worker(trader)
    assert counter.placed == 1 and "AUTHORIZATION" not in log.read_text(errors="replace")


def test_a_home_formatted_without_secure_is_not_started_secure(tmp_path: Path) -> None:
    """Its metadata log has no SCRAM users: started secured, nobody could log in. Said before
    anything starts, and nothing is generated in it."""
    data = tmp_path / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("node.id=1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_"))}
    env.update({"MARKETPIPE_HOME": str(tmp_path), "MARKETPIPE_KAFKA_PORT": str(free_port())})
    done = _cli(env, "kafka", "up", "--local", "--secure", timeout=60)
    assert done.returncode == 1
    assert "formatted without --secure" in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "kafka" / "secure").exists()
