from __future__ import annotations

import logging
import re
from dataclasses import fields
from decimal import Decimal
from pathlib import Path

import pytest

from marketpipe import settings
from tests.support.paths import ROOT


def test_defaults_point_at_the_local_broker() -> None:
    s = settings.load({})
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.kafka.external is False
    assert s.kafka.client_config() == {"bootstrap.servers": "127.0.0.1:9092"}
    assert s.topic("md.tick") == "md.tick"
    assert settings.load({"MARKETPIPE_KAFKA_PORT": "19092"}).kafka.bootstrap_servers == "127.0.0.1:19092"


def test_security_options_and_passthrough_reach_the_client_config() -> None:
    s = settings.load({
        "KAFKA_BOOTSTRAP_SERVERS": "b1:9093,b2:9093",
        "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "svc",
        "KAFKA_SASL_PASSWORD": "hunter2",
        "KAFKA_SSL_CA_LOCATION": "/etc/ca.pem",
        "KAFKA_OPT_SOCKET_KEEPALIVE_ENABLE": "true",
        "MARKETPIPE_TOPIC_PREFIX": "stg.",
    })
    conf = s.kafka.client_config()
    assert conf == {
        "bootstrap.servers": "b1:9093,b2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": "hunter2",
        "ssl.ca.location": "/etc/ca.pem",
        "socket.keepalive.enable": "true",
    }
    assert s.kafka.external is True
    assert s.topic("md.tick") == "stg.md.tick"


def test_values_are_parsed_to_their_types() -> None:
    s = settings.load({"MARKETPIPE_TRADER_ALLOW": " 600519.SH, ,000001.SZ", "MARKETPIPE_TRADER_POLL_SECONDS": "0.3",
                       "MARKETPIPE_TRADER_MAX_ORDER_NOTIONAL": "2500.50", "MARKETPIPE_BAR_INTERVAL": "5s",
                       "MARKETPIPE_PROCESSOR_AGENTS": "BARS", "JVQUANT_BASE_URL": "http://sim:1/",
                       "MARKETPIPE_LOG_LEVEL": "debug", "MARKETPIPE_HOME": "~/mp"})
    assert s.trader.allow == ("600519.SH", "000001.SZ")
    assert s.trader.poll_seconds == 0.3
    assert s.trader.max_order_notional == Decimal("2500.50")
    assert s.processor.bar_interval_ms == 5000 and s.processor.agents == "bars"
    assert s.providers.jvquant_base_url == "http://sim:1"
    assert s.log_level == "DEBUG"
    assert s.home == Path("~/mp").expanduser() and s.home.is_absolute()


def test_an_empty_value_means_the_default() -> None:
    s = settings.load({"MARKETPIPE_TRADER_POLL_SECONDS": "", "KAFKA_BOOTSTRAP_SERVERS": "", "KAFKA_OPT_ACKS": ""})
    assert s.trader.poll_seconds == 2.0
    assert s.kafka.external is False and s.kafka.client_config() == {"bootstrap.servers": "127.0.0.1:9092"}


def test_secrets_never_print(caplog: pytest.LogCaptureFixture) -> None:
    s = settings.load({"JVQUANT_TOKEN": "tok-123", "KAFKA_SASL_PASSWORD": "pw-456",
                       "MARKETPIPE_ORDER_SIGNING_KEY": "key-789"})
    sections = [getattr(s, cls_name) for cls_name in ("kafka", "providers", "orders")]
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("settings %s %r %s %s", s, s, f"{s.providers.jvquant_token}", sections)
    text = caplog.text + repr(s) + str(s) + repr(sections)
    for secret in ("tok-123", "pw-456", "key-789"):
        assert secret not in text
    assert s.providers.jvquant_token.reveal() == "tok-123"
    assert s.order_signing_key.reveal() == "key-789"


def test_bad_values_name_the_variable() -> None:
    with pytest.raises(settings.SettingsError, match="MARKETPIPE_KAFKA_PORT"):
        settings.load({"MARKETPIPE_KAFKA_PORT": "ninety"}).kafka
    with pytest.raises(settings.SettingsError, match="KAFKA_SECURITY_PROTOCOL"):
        settings.load({"KAFKA_SECURITY_PROTOCOL": "TLS"}).kafka
    with pytest.raises(settings.SettingsError, match="MARKETPIPE_TRADER_MAX_ORDER_NOTIONAL='1e'"):
        settings.load({"MARKETPIPE_TRADER_MAX_ORDER_NOTIONAL": "1e"}).trader
    with pytest.raises(settings.SettingsError, match="INFOWAY_SUBSCRIBE_INTERVAL='nan'"):
        settings.load({"INFOWAY_SUBSCRIBE_INTERVAL": "nan"}).providers
    with pytest.raises(settings.SettingsError, match="MARKETPIPE_LOG_LEVEL='loud'"):
        settings.load({"MARKETPIPE_LOG_LEVEL": "loud"}).log_level
    with pytest.raises(settings.SettingsError, match="MARKETPIPE_BAR_GRACE"):
        settings.load({"MARKETPIPE_BAR_GRACE": "soon"}).processor


def test_a_section_is_parsed_only_when_used() -> None:
    """The issue's example: a bad trader setting does not concern a command that never trades."""
    s = settings.load({"MARKETPIPE_TRADER_POLL_SECONDS": "abc"})
    assert s.kafka.bootstrap_servers and s.processor.batch == 2000 and s.providers.jvquant_market == "ab"
    assert s.log_level == "INFO" and s.home and s.order_signing_key is not None
    with pytest.raises(settings.SettingsError, match="MARKETPIPE_TRADER_POLL_SECONDS='abc' is not a number"):
        s.trader


def test_a_parsed_section_is_kept() -> None:
    s = settings.load({})
    assert s.trader is s.trader


@pytest.mark.parametrize("section", settings.SECTIONS, ids=lambda cls: cls.__name__)
def test_every_field_of_a_section_is_a_declared_setting(section: type) -> None:
    declared = dict(settings.variables(section))
    assert [f.name for f in fields(section)] == list(declared)
    for name, var in declared.items():
        hint = section.__annotations__[name]
        assert var.secret == (hint == "Secret"), f"{var.name}: secret={var.secret} but the field holds {hint}"
        assert var.doc.strip() and "\n" not in var.doc, var.name


def test_each_variable_is_declared_exactly_once_and_documented() -> None:
    names = [name for name, _, _ in settings.DOCUMENTED]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert names == [var.name for var in settings.declared()]
    assert {"MARKETPIPE_TRADER_CRASH_POINT", "MARKETPIPE_KAFKA_POM", "XDG_CACHE_HOME"} <= set(names)


def test_every_default_parses() -> None:
    s = settings.load({})
    for section in settings.SECTIONS:
        settings.parse_section(section, {})
    assert s.trader.crash_point == "" and s.local.kafka_pom is None


def test_load_keeps_only_declared_variables() -> None:
    s = settings.load({"PATH": "/bin", "KAFKA_OPT_ACKS": "all", "MARKETPIPE_HOME": "/x", "MARKETPIPE_TYPO": "1"})
    assert dict(s.env) == {"KAFKA_OPT_ACKS": "all", "MARKETPIPE_HOME": "/x"}


def test_with_env_overrides_some_variables() -> None:
    s = settings.load({"MARKETPIPE_TOPIC_PREFIX": "a.", "JVQUANT_MARKET": "hk"})
    t = s.with_env(MARKETPIPE_TOPIC_PREFIX="b.", KAFKA_BOOTSTRAP_SERVERS="k:9092")
    assert (t.topic_prefix, t.kafka.bootstrap_servers, t.providers.jvquant_market) == ("b.", "k:9092", "hk")
    assert s.topic_prefix == "a."


def test_readme_table_is_generated_from_the_declarations() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings.markdown_table() in readme, "regenerate it: python -m marketpipe.settings"


def test_readme_documents_every_setting_and_topic() -> None:
    from marketpipe.kafka import topics

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, _, _ in settings.DOCUMENTED:
        assert f"`{name}`" in readme, name
    for spec in topics.TOPICS:
        assert f"`{spec.name}`" in readme, spec.name


#: a read of the environment: os.environ.get(...), os.getenv(...), os.environ[...] not being assigned
ENV_READ = re.compile(r"os\.environ\.get\(|getenv\(|os\.environ\[[^\]]+\](?!\s*=[^=])")
PRODUCT = ("marketpipe/producers", "marketpipe/processors", "marketpipe/trader", "marketpipe/simulators",
           "marketpipe/schemas", "marketpipe/providers", "marketpipe")
#: the pytest plugin configures tests (MARKETPIPE_TEST_BROKER ...), not the product
NOT_PRODUCT = {"marketpipe/testing.py"}


def test_product_code_reads_the_environment_only_through_settings() -> None:
    offenders = []
    for package in PRODUCT:
        # a folder that moved would otherwise be walked as an empty one and the test could not fail
        assert (ROOT / package).is_dir(), f"{package} is not a folder of this checkout: update PRODUCT"
        files = sorted((ROOT / package).rglob("*.py"))
        assert files, f"no Python file under {package}"
        for file in files:
            rel = file.relative_to(ROOT).as_posix()
            if rel in NOT_PRODUCT or rel == "marketpipe/settings.py":
                continue
            for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
                if ENV_READ.search(line):
                    offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "declare these in marketpipe/settings.py:\n" + "\n".join(offenders)


def test_the_environment_read_pattern_finds_reads_not_writes() -> None:
    assert ENV_READ.search('x = os.environ.get("A", "")') and ENV_READ.search('os.getenv("A")')
    assert ENV_READ.search('p = Path(os.environ["BENCH_COUNT_FILE"])')
    assert not ENV_READ.search('os.environ[variable] = value')
    assert not ENV_READ.search('env = dict(os.environ)')


def test_group_ids_carry_the_topic_prefix() -> None:
    assert settings.load({}).group_id("marketpipe-trader") == "marketpipe-trader"
    assert settings.load({"MARKETPIPE_TOPIC_PREFIX": "staging."}).group_id("marketpipe-trader") == \
        "marketpipe-trader-staging"


def test_trader_consumer_groups_carry_the_topic_prefix() -> None:
    from marketpipe.trader import consumer

    plain = consumer.groups(settings.load({}))
    assert plain == consumer.Groups("marketpipe-trader", "marketpipe-trader-control", "marketpipe-trader-ledger-reader")
    staged = consumer.groups(settings.load({"MARKETPIPE_TOPIC_PREFIX": "stg."}))
    assert staged == consumer.Groups("marketpipe-trader-stg", "marketpipe-trader-control-stg",
                                     "marketpipe-trader-ledger-reader-stg")


def test_crash_point_is_a_declared_test_hook() -> None:
    assert settings.load({"MARKETPIPE_TRADER_CRASH_POINT": "after_broker_accept"}).trader.crash_point == \
        "after_broker_accept"
    with pytest.raises(settings.SettingsError, match="MARKETPIPE_TRADER_CRASH_POINT='after_accept'"):
        settings.load({"MARKETPIPE_TRADER_CRASH_POINT": "after_accept"}).trader
    meaning = dict((name, doc) for name, _, doc in settings.DOCUMENTED)["MARKETPIPE_TRADER_CRASH_POINT"]
    assert meaning.startswith("Test hook")


def test_the_local_broker_takes_its_pom_and_cache_from_the_settings(tmp_path: Path) -> None:
    from marketpipe.kafka.broker import local_broker

    pom = tmp_path / "pom.xml"
    pom.write_text("<project><properties><kafka.version>9.9.9</kafka.version></properties></project>")
    s = settings.load({"MARKETPIPE_KAFKA_POM": str(pom), "XDG_CACHE_HOME": str(tmp_path / "cache"),
                       "MARKETPIPE_HOME": str(tmp_path / "home")})
    broker = local_broker(s)
    assert broker.version == "9.9.9"
    assert broker.libs == tmp_path / "cache" / "marketpipe" / "kafka-9.9.9" / "libs"
