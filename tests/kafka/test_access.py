"""The least-privilege declarations (marketpipe/kafka/access.py) against the names the code really uses,
and the secured broker's material (marketpipe/kafka/security.py), without a broker. What a broker
makes of the ACLs is tested in tests/integration/test_secure_broker.py."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from marketpipe import settings
from marketpipe.kafka import access, topics
from marketpipe.kafka.security import ADMIN, BrokerSecurity


def allowed(rules: list[access.Rule], user: str, kind: str, name: str, operation: str) -> bool:
    """Kafka's reading of ALLOW ACLs: a literal names one resource, a prefixed one every name
    starting with it; ALL allows every operation."""
    return any(r.principal == f"User:{user}" and r.kind == kind and r.operation in (operation, "ALL")
               and (name.startswith(r.name) if r.prefixed else name == r.name) for r in rules)


@pytest.fixture
def s() -> settings.Settings:
    return settings.load({"MARKETPIPE_TOPIC_PREFIX": "x."})


def test_the_components_may_use_the_groups_and_topics_the_code_names(s: settings.Settings) -> None:
    from marketpipe.processors.app import group_id
    from marketpipe.trader.consumer import groups

    rules = list(access.rules(s))
    trader_groups = vars(groups(s)).values()
    assert all(allowed(rules, "trader", "GROUP", g, "READ") for g in trader_groups)
    for agents in ("all", "normalize", "bars"):
        app = group_id(s.with_env(MARKETPIPE_PROCESSOR_AGENTS=agents))
        assert allowed(rules, "processor", "GROUP", app, "READ")
        assert allowed(rules, "processor", "GROUP", f"{app}-bar-restore", "READ")
        assert allowed(rules, "processor", "TOPIC", f"{app}-__assignor-__leader", "CREATE")
    assert allowed(rules, "processor", "GROUP", s.group_id("marketpipe-gap-feed"), "READ")
    assert allowed(rules, "reader", "GROUP", "marketpipe-tail-1a2b3c4d", "READ")


def test_nobody_but_the_trader_may_join_its_groups(s: settings.Settings) -> None:
    from marketpipe.trader.consumer import groups

    rules = list(access.rules(s))
    others = [c.user for c in access.COMPONENTS if c.user != "trader"]
    assert [(u, g) for u in others for g in vars(groups(s)).values() if allowed(rules, u, "GROUP", g, "READ")] == []


def test_the_issue_s_grants_and_denials(s: settings.Settings) -> None:
    rules = list(access.rules(s))
    can = {(user, op, t) for c in access.COMPONENTS for user in [c.user] for op in ("READ", "WRITE")
           for t in (spec.name for spec in topics.TOPICS) if allowed(rules, user, "TOPIC", s.topic(t), op)}
    writes = {(u, t) for u, op, t in can if op == "WRITE"}
    assert {t for u, t in writes if u == "producer"} == {*topics.RAW_TOPICS.values(), topics.MD_STATUS}
    assert {t for u, t in writes if u == "sender"} == {topics.ORDER_COMMANDS}
    assert {t for u, t in writes if u == "operator"} == {topics.ORDER_CONTROL}
    assert {t for u, t in writes if u == "trader"} == {topics.ORDER_EVENTS, topics.ORDER_LEDGER,
                                                       topics.ORDER_POSITIONS}
    assert {u for u, t in writes if t == topics.ORDER_COMMANDS} == {"sender"}
    assert {t for u, t in writes if u == "reader"} == set()
    reads = {t for u, op, t in can if u == "reader" and op == "READ"}
    assert reads == {t.name for t in topics.TOPICS if t.name.startswith("md.")} | {topics.ORDER_EVENTS}


def test_one_pipeline_s_grants_reach_nothing_of_another(s: settings.Settings) -> None:
    from marketpipe.processors.app import group_id
    from marketpipe.trader.consumer import groups

    rules = list(access.rules(s))  # prefix x.; the other pipeline is xy.
    other = settings.load({"MARKETPIPE_TOPIC_PREFIX": "xy."})
    names = [("TOPIC", other.topic(t.name)) for t in topics.TOPICS]
    apps = [group_id(other.with_env(MARKETPIPE_PROCESSOR_AGENTS=a)) for a in ("all", "normalize", "bars")]
    names += [("GROUP", g) for g in vars(groups(other)).values()] + [("GROUP", g) for g in apps]
    names += [("TOPIC", f"{g}-__assignor-__leader") for g in apps]
    assert [(c.user, kind, n) for c in access.COMPONENTS for kind, n in names
            for op in ("READ", "WRITE") if allowed(rules, c.user, kind, n, op)] == []


def test_every_declared_pattern_names_a_declared_topic() -> None:
    declared = [spec.name for spec in topics.TOPICS]
    for c in access.COMPONENTS:
        for pattern in (*c.read, *c.write):
            stem = pattern.rstrip("*")
            assert any(t == stem or (pattern.endswith("*") and t.startswith(stem)) for t in declared), pattern


def test_the_password_file_is_read_when_no_password_is_set(tmp_path: Path) -> None:
    pw = tmp_path / "reader.password"
    pw.write_text("from-the-file\n")
    s = settings.load({"KAFKA_SASL_PASSWORD_FILE": str(pw), "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    assert s.kafka.client_config()["sasl.password"] == "from-the-file"
    given = settings.load({"KAFKA_SASL_PASSWORD_FILE": str(pw), "KAFKA_SASL_PASSWORD": "from-env"})
    assert given.kafka.client_config()["sasl.password"] == "from-env"
    missing = settings.load({"KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "nope")})
    with pytest.raises(settings.SettingsError, match="KAFKA_SASL_PASSWORD_FILE=.*cannot be read"):
        missing.kafka.client_config()


def test_the_secured_broker_s_material_is_private_and_its_settings_name_no_password(tmp_path: Path) -> None:
    sec = BrokerSecurity.of_home(tmp_path)
    sec.ensure("127.0.0.1")
    assert stat.S_IMODE(sec.dir.stat().st_mode) == 0o700
    secret_files = [sec.password_file(u) for u in sec.users] + [sec.dir / "ca.key", sec.dir / "broker.key",
                                                                sec.keystore, sec.dir / "keystore.password"]
    assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in secret_files} == {f.name: 0o600 for f in secret_files}
    passwords = [sec.password(u) for u in sec.users]
    assert len(set(passwords)) == len(passwords) and all(len(p) >= 32 for p in passwords)
    shown = sec.instructions("127.0.0.1:9092") + "".join(sec.env_file(u).read_text() for u in sec.users)
    assert [p for p in passwords if p in shown] == []
    env = dict(line.split("=", 1) for line in sec.env_file("reader").read_text().splitlines())
    s = settings.load(env)
    assert s.kafka.client_config()["sasl.password"] == sec.password("reader")
    props = sec.broker_properties("127.0.0.1", 9092, 9093)
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == f"User:{ADMIN}"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
    scram = sec.format_args()
    assert scram.count("--add-scram") == len(sec.users) == len(access.COMPONENTS) + 1
    before = sec.password("reader")
    sec.ensure("127.0.0.1")  # a second `kafka up --secure` keeps the home's users
    assert sec.password("reader") == before


def test_an_acl_refusal_reads_as_one_line_naming_the_user_not_as_a_dead_broker() -> None:
    from confluent_kafka import KafkaError, KafkaException

    from marketpipe.cli.main import user_error

    s = settings.load({"KAFKA_SASL_USERNAME": "reader", "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    line = user_error(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)), s)
    assert line == ("Kafka at 127.0.0.1:9092: TOPIC_AUTHORIZATION_FAILED: reader is not allowed this "
                    "(the grants: `marketpipe topics acl --dry-run`)")
