"""topicrange.plan: offsets of a time range, read while the broker may still be settling leaders."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from marketpipe.kafka.topicrange import PartitionRange, parse_time_ms, plan


class Consumer:
    """Two partitions; the first watermark request fails ``failures`` times with ``code``."""

    def __init__(self, failures: int, code: int = KafkaError.NOT_LEADER_FOR_PARTITION) -> None:
        self.failures, self.code = failures, code

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(partitions={0: None, 1: None}, error=None)})

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        if self.failures:
            self.failures -= 1
            raise KafkaException(KafkaError(self.code))
        return 0, 10 * (tp.partition + 1)

    def offsets_for_times(self, tps: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 3 if tp.partition == 0 else -1) for tp in tps]


def test_plan_reads_the_range_from_the_time_to_the_current_end() -> None:
    assert plan(Consumer(0), "t", 1, None) == [PartitionRange(0, 3, 10)]  # partition 1: nothing since then


def test_a_leader_still_moving_is_waited_for_not_reported() -> None:
    assert plan(Consumer(2), "t", 1, None, sleep=lambda s: None) == [PartitionRange(0, 3, 10)]


def test_a_lasting_failure_is_still_reported() -> None:
    with pytest.raises(KafkaException):
        plan(Consumer(1, KafkaError.TOPIC_AUTHORIZATION_FAILED), "t", 1, None, sleep=lambda s: None)


def test_times_read_as_iso_durations_or_epoch_ms() -> None:
    now = 1_790_000_000_000
    assert parse_time_ms("15m", now) == now - 900_000
    assert parse_time_ms("1790000000000", now) == 1_790_000_000_000
    assert parse_time_ms("2026-11-26T09:30+08:00", now) == 1_795_656_600_000
