"""A record Kafka refuses is counted by the processor's Output, so the batch is never acknowledged.

The delivery callback is set once in the producer's configuration (not per produce call); this
checks that it still fires for failures. No broker answers on the port, and records time out
after 300 ms.
"""

from __future__ import annotations

from marketpipe import settings
from marketpipe.processors.output import Output
from marketpipe.runtime.localhost import free_port


def test_a_refused_record_is_reported_by_flush() -> None:
    out = Output(settings.load({"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                                "KAFKA_OPT_MESSAGE_TIMEOUT_MS": "300"}))
    out.send("md.tick", "Tick", "600519.SH", {
        "provider": "jvquant", "symbol": "600519.SH", "venue_symbol": "600519", "event_time": 1, "receive_time_ns": 2,
        "price": 1.0, "size": 100.0, "amount": None, "side": "UNKNOWN", "trade_id": "1", "session": None,
        "parser_version": "t", "source": {"topic": "raw.jvquant", "partition": 0, "offset": 1, "index": 0}}, 1)
    problem = out.flush_now()
    assert problem is not None and problem.startswith("0 records unacknowledged and 1 refused by Kafka (")
    assert "Message timed out" in problem  # the reason is said, not only counted


def test_a_record_older_than_its_topics_retention_is_stamped_now_so_kafka_keeps_it() -> None:
    """The Kafka timestamp is the event time, but a redriven or replayed record whose event time lies
    beyond its topic's retention (a kline of last year on md.kline, 30 days) was deleted by the broker
    at its next retention check, a minute after redrive said it was fixed. It gets "now" instead; its
    event_time field keeps the exact time."""
    import time

    from marketpipe.kafka import topics

    out = Output(settings.load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}), producer=object())
    now = int(time.time() * 1000)
    day = 24 * 3600 * 1000
    kline_days = int(topics.by_name("md.kline").config["retention.ms"]) // day
    old = now - (kline_days + 300) * day
    assert out.stamp("md.kline", old, now) == now
    assert out.stamp("md.kline", now - 2 * day, now) == now - 2 * day  # well within retention: event time
    assert out.stamp("md.quote", now - 2 * day, now) == now  # md.quote keeps one day
    assert out.stamp("md.tick", now + 2 * 3600 * 1000, now) == now  # too far ahead for the broker
    assert out.stamp("md.bar.state", old, now) == old  # compacted: no retention by time
