"""Poison records on a real broker: one frame the processor cannot handle is dead-lettered, counted and
skipped; the worker never dies on it and the records behind it still come out."""

from __future__ import annotations

import time

from confluent_kafka import Producer

from marketpipe import settings as settings_mod
from marketpipe.kafka import topics
from tests.support.feeder import Feeder
from tests.support.pipeline import read_topic, start_worker, stop_worker


def readable_ticks(s: settings_mod.Settings, until: int, timeout: float = 120.0) -> list[dict]:
    """md.tick records that decode (the test put one that does not there itself)."""
    import uuid

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from marketpipe.schemas.codec import Codec, CodecError

    topic = s.topic("md.tick")
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}"})
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    codec, out, deadline = Codec(), [], time.monotonic() + timeout
    try:
        while len(out) < until and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.3):
                try:
                    out.append(codec.decode(msg.value()).record)
                except CodecError:
                    pass
    finally:
        consumer.close()
    return out


def test_one_megabyte_bad_frame_is_dead_lettered_and_good_frames_behind_it_still_flow(
        mp_env: dict[str, str], mp_settings: settings_mod.Settings, tmp_path) -> None:
    s = mp_settings
    feed = Feeder(s)
    feed.producer = Producer({**s.kafka.client_config(), "message.max.bytes": str(topics.PRODUCER_MAX_MESSAGE_BYTES)})
    # ~1 MB of text that is not an Infoway frame: raw topics take it (8 MiB), the dead letter that
    # embeds it did not fit the 1 MB producer/topic defaults and crash-looped the worker
    bad = b"{" + b"x" * 1_048_000
    feed.send("infoway", "iw-1", bad)
    now = int(time.time() * 1000)
    for i in range(20):
        feed.trade("iw-1", "BTCUSDT", 60000 + i, now - 10_000 + i)
    # and a record on md.tick that is no Tick: the bar agent dead-letters it and bins the rest
    feed.producer.produce(s.topic("md.tick"), key=b"BTCUSDT", value=b"\xc3\x01 not avro", partition=0)
    feed.flush()
    log = tmp_path / "worker.log"
    proc = start_worker({**mp_env, "MARKETPIPE_PROCESSOR_SESSION_TIMEOUT": "6s"}, log)
    try:
        ticks = readable_ticks(s, until=20)
        dlq = read_topic(s, "md.dlq", until=2, idle=5)
        bars = read_topic(s, "md.bar", until=1, idle=10)
        alive = proc.poll() is None
    finally:
        stop_worker(proc)
    text = log.read_text(errors="replace")
    assert alive and "stopping this worker" not in text, text[-3000:]
    assert len({t["source"]["offset"] for t in ticks}) == 20, text[-3000:]
    assert bars and bars[0]["symbol"] == "BTCUSDT", text[-3000:]
    assert len(dlq) == 2, text[-3000:]
    tick_letter = next(d for d in dlq if d["source"]["topic"] == s.topic("md.tick"))
    assert tick_letter["raw"] == b"\xc3\x01 not avro" and tick_letter["error_type"] == "CodecError"
    assert tick_letter["source"]["partition"] == 0 and tick_letter["source"]["offset"] == 0
    letter = next(d for d in dlq if d["source"]["topic"] == s.topic("raw.infoway"))
    assert letter["source"]["offset"] == 0 and letter["raw_length"] == len(bad)
    assert letter["reason"].startswith("infoway:")
    if letter["raw"]:  # kept whole ...
        assert letter["raw"] == bad
    else:  # ... or replaced by its digest and a pointer to the raw record
        import hashlib

        assert letter["raw_sha256"] == hashlib.sha256(bad).hexdigest() and letter["raw_length"] == len(bad)
