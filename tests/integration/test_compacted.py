"""Reading a compacted topic to its end (marketpipe.kafka.compacted), against a real broker."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Producer

from marketpipe.kafka import topics
from marketpipe.kafka.compacted import ReadIncomplete, TopicMissing, read_to_end
from marketpipe.trader.ledger import Entry, Ledger


def produce(s: Any, topic: str, records: list[tuple[bytes, bytes | None, int]]) -> None:
    producer = Producer({**s.kafka.client_config(), "acks": "all"})
    for key, value, partition in records:
        producer.produce(topic, key=key, value=value, partition=partition)
    assert producer.flush(30) == 0


def test_reads_every_partition_to_its_end_with_tombstones(mp_settings: Any) -> None:
    s = mp_settings
    topic = s.topic(topics.ORDER_POSITIONS)  # compacted, 3 partitions
    produce(s, topic, [(b"a", b"1", 0), (b"b", b"2", 1), (b"a", b"3", 0), (b"b", None, 1)])
    seen: list[tuple[int, bytes, bytes | None]] = []
    n = read_to_end(s.kafka.client_config(), topic, "test-reader",
                    lambda m: seen.append((m.partition(), m.key(), m.value())))
    assert n == 4
    # in order within each partition, the tombstone included
    assert [(k, v) for p, k, v in seen if p == 0] == [(b"a", b"1"), (b"a", b"3")]
    assert [(k, v) for p, k, v in seen if p == 1] == [(b"b", b"2"), (b"b", None)]


def test_an_empty_topic_reads_at_once_and_a_missing_one_is_named(mp_settings: Any) -> None:
    s = mp_settings
    assert read_to_end(s.kafka.client_config(), s.topic(topics.ORDER_CONTROL), "test-reader", print) == 0
    with pytest.raises(TopicMissing, match="no.such.topic is missing"):
        read_to_end(s.kafka.client_config(), s.topic("no.such.topic"), "test-reader", print, timeout=5,
                    what="no.such.topic")


def test_a_read_that_cannot_finish_in_time_says_so(mp_settings: Any) -> None:
    s = mp_settings
    topic = s.topic(topics.ORDER_POSITIONS)
    produce(s, topic, [(b"k", b"v", 2)])
    with pytest.raises(ReadIncomplete, match=r"not fully read in 0 s \(partitions \[2\]\)"):
        read_to_end(s.kafka.client_config(), topic, "test-reader", print, timeout=0.0)


def test_ledger_load_keeps_the_latest_entry_per_command_and_forgets_tombstones(mp_settings: Any) -> None:
    s = mp_settings
    topic = s.topic(topics.ORDER_LEDGER)
    first = Entry("c1", "acct", "PLACE", "600519.SH", "INTENT")
    later = Entry("c1", "acct", "PLACE", "600519.SH", "SUBMITTED", broker_order_id="o1")
    gone = Entry("c2", "acct", "PLACE", "000001.SZ", "DONE")
    produce(s, topic, [(b"c1", first.to_bytes(), 0), (b"c1", later.to_bytes(), 0), (b"c2", gone.to_bytes(), 1),
                       (b"c2", None, 1)])
    ledger = Ledger(producer=None, topic=topic)
    assert ledger.load(s.kafka.client_config()) == 1
    assert ledger.get("c1") == later and ledger.get("c2") is None
