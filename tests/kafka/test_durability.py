"""The rules of `marketpipe topics check` and of `topics create` on a cluster, on fake metadata."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from marketpipe.kafka import durability, topics
from marketpipe.kafka.durability import Finding, TopicFacts, topic_findings


def test_a_durable_topic_has_no_finding() -> None:
    assert topic_findings([TopicFacts("md.tick", True, 3, 2, False)], brokers=3) == []


def test_each_weakness_is_one_finding_naming_the_topic() -> None:
    found = topic_findings([TopicFacts("md.tick", True, 1, 1, True), TopicFacts("md.bar", False)], brokers=3)
    assert [f.subject for f in found] == ["md.tick"] * 3 + ["md.bar"]
    text = [str(f) for f in found]
    assert text[0].startswith("md.tick: replication factor 1 < 3")
    assert text[1].startswith("md.tick: min.insync.replicas=1 < 2")
    assert text[2].startswith("md.tick: unclean.leader.election.enable=true")
    assert text[3].startswith("md.bar: missing")


def test_allow_single_broker_accepts_rf1_only_on_one_broker() -> None:
    weak = [TopicFacts("md.tick", True, 1, 1, False)]
    assert topic_findings(weak, brokers=1, allow_single_broker=True) == []
    assert len(topic_findings(weak, brokers=1)) == 2
    assert len(topic_findings(weak, brokers=3, allow_single_broker=True)) == 2  # a cluster must be durable


def test_durable_config_only_from_three_brokers() -> None:
    assert durability.durable_topic_config(1) == durability.durable_topic_config(2) == {}
    assert durability.durable_topic_config(3) == {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
    assert [durability.replication_for(n) for n in (1, 3, 5)] == [1, 3, 3]


UNREADABLE = "config is neither durable_producer_config(...) nor a dict literal this check can read"

SOURCE = '''
from confluent_kafka import Producer

def good(s):
    return Producer({**s, "enable.idempotence": True, "acks": "all"})

def via_variable(s):
    conf = {**s, "acks": "1", "enable.idempotence": True}
    return Producer(conf)

def opaque(conf):
    return Producer(conf)

def overridden(s):
    return Producer({"enable.idempotence": True, "acks": "all", "acks": 1})

def refusal(s):
    return Producer(s)

def factory(s):
    return Producer(durable_producer_config(s, {"linger.ms": 5}))

def factory_via_variable(s):
    conf = durable_producer_config(s)
    return Producer(conf)

def factory_overridden(s):
    return Producer(durable_producer_config(s, {"acks": "1"}))
'''


def test_producer_configs_are_read_from_source() -> None:
    found = durability.source_producer_findings(SOURCE, "x.py")
    assert found == [
        Finding("producer x.py:9", "acks is not all"),
        Finding("producer x.py:12", UNREADABLE),
        Finding("producer x.py:15", "acks is not all"),
        Finding("producer x.py:18", UNREADABLE),
        Finding("producer x.py:28", "acks is not all"),  # an extra after DURABLE overrides it
    ]
    # the exemption is per file: kafka/security.py's refusal is a probe that never produces, x.refusal is not
    assert [f.subject for f in durability.source_producer_findings(SOURCE, "kafka/security.py")] == [
        "producer kafka/security.py:9", "producer kafka/security.py:12", "producer kafka/security.py:15",
        "producer kafka/security.py:28"]
    assert durability.config_findings({}) == ["enable.idempotence is not true", "acks is not all"]


def test_every_producer_marketpipe_builds_is_idempotent_with_acks_all() -> None:
    assert durability.producer_findings() == []


class FakeAdmin:
    """list_topics with ``brokers`` brokers and no topics; records what create_topics asks for."""

    created: list[Any] = []

    def __init__(self, brokers: int) -> None:
        self.brokers = brokers

    def __call__(self, conf: Any) -> FakeAdmin:
        return self

    def list_topics(self, timeout: float = 0) -> Any:
        names = {t.topic: SimpleNamespace(error=None, partitions={0: SimpleNamespace(leader=1)}) for t in self.created}
        return SimpleNamespace(brokers={i: None for i in range(1, self.brokers + 1)}, topics=names)

    def create_topics(self, new: list[Any], request_timeout: float = 0) -> dict[str, Any]:
        self.created.extend(new)
        return {t.topic: SimpleNamespace(result=lambda timeout: None) for t in new}


@pytest.mark.parametrize("brokers,rf,extra", [
    (1, -1, {}),
    (3, 3, {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}),
    (5, 3, {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}),
])
def test_topics_create_is_durable_on_a_cluster(monkeypatch: pytest.MonkeyPatch, brokers: int, rf: int,
                                               extra: dict[str, str]) -> None:
    import confluent_kafka.admin

    admin = FakeAdmin(brokers)
    admin.created = []
    monkeypatch.setattr(confluent_kafka.admin, "AdminClient", admin)
    topics.create_topics({"bootstrap.servers": "x:1"})
    assert len(admin.created) == len(topics.TOPICS)
    for new, spec in zip(admin.created, topics.TOPICS):
        assert new.replication_factor == rf
        assert {**extra, **spec.config} == new.config


def test_startup_warning_names_each_weak_topic_in_one_line() -> None:
    facts = [TopicFacts("md.tick", True, 1, 1, False), TopicFacts("md.bar", True, 3, 2, True),
             TopicFacts("md.quote", True, 3, 2, False)]
    line = durability.startup_warning(3, facts)
    assert line is not None and "\n" not in line
    assert "md.tick: replication factor 1 < 3" in line and "md.tick: min.insync.replicas=1 < 2" in line
    assert "md.bar: unclean.leader.election.enable=true" in line
    assert "md.quote" not in line and "3 brokers" in line


def test_startup_warning_is_silent_when_durable_on_one_broker_or_for_a_missing_topic() -> None:
    weak = [TopicFacts("md.tick", True, 1, 1, True)]
    assert durability.startup_warning(3, [TopicFacts("md.tick", True, 3, 2, False)]) is None
    assert durability.startup_warning(1, weak) is None  # a development broker cannot do better
    assert durability.startup_warning(2, weak) is None
    assert durability.startup_warning(3, [TopicFacts("md.tick", False)]) is None
    assert durability.startup_warning(5, weak) is not None


def test_warn_if_weak_logs_once_and_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[tuple[str, str]] = []

    class Log:
        def warning(self, fmt: str, *args: Any) -> None:
            lines.append(("warning", fmt % args))

        def debug(self, fmt: str, *args: Any) -> None:
            lines.append(("debug", fmt % args))

    monkeypatch.setattr(durability, "cluster_facts", lambda *a, **k: (3, [TopicFacts("md.tick", True, 1, 2, False)]))
    durability.warn_if_weak({}, ["md.tick"], "processor", Log())
    assert [level for level, _ in lines] == ["warning"] and lines[0][1].startswith("processor: durability weaker")

    def dead(*a: Any, **k: Any) -> Any:
        raise RuntimeError("no broker answered")

    lines.clear()
    monkeypatch.setattr(durability, "cluster_facts", dead)
    durability.warn_if_weak({}, ["md.tick"], "trader", Log())
    assert lines == [("debug", "trader: durability of md.tick not checked: no broker answered")]
