from __future__ import annotations

import logging

import pytest

from marketpipe import settings


def test_defaults_point_at_the_local_broker() -> None:
    s = settings.load({})
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.kafka.external is False
    assert s.kafka.client_config() == {"bootstrap.servers": "127.0.0.1:9092"}
    assert s.topic("md.tick") == "md.tick"


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


def test_secrets_never_print(caplog: pytest.LogCaptureFixture) -> None:
    s = settings.load({"JVQUANT_TOKEN": "tok-123", "KAFKA_SASL_PASSWORD": "pw-456",
                       "MARKETPIPE_ORDER_SIGNING_KEY": "key-789"})
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("settings %s %r %s", s, s, f"{s.providers.jvquant_token}")
    text = caplog.text + repr(s) + str(s)
    for secret in ("tok-123", "pw-456", "key-789"):
        assert secret not in text
    assert s.providers.jvquant_token.reveal() == "tok-123"


def test_bad_values_name_the_variable() -> None:
    with pytest.raises(settings.SettingsError, match="MARKETPIPE_KAFKA_PORT"):
        settings.load({"MARKETPIPE_KAFKA_PORT": "ninety"})
    with pytest.raises(settings.SettingsError, match="KAFKA_SECURITY_PROTOCOL"):
        settings.load({"KAFKA_SECURITY_PROTOCOL": "TLS"})


def test_every_variable_load_reads_is_documented() -> None:
    import inspect
    import re

    source = inspect.getsource(settings.load)
    read = set(re.findall(r'"((?:KAFKA|SCHEMA|MARKETPIPE|JVQUANT|INFOWAY|JIN10)_[A-Z0-9_]+)"', source))
    documented = {name for name, _, _ in settings.DOCUMENTED}
    assert read - {"KAFKA_OPT_"} <= documented, read - documented


def test_readme_documents_every_setting_and_topic() -> None:
    from pathlib import Path

    from marketpipe import topics

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for name, _, _ in settings.DOCUMENTED:
        assert f"`{name}`" in readme, name
    for spec in topics.TOPICS:
        assert f"`{spec.name}`" in readme, spec.name
