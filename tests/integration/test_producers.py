"""Producers against their simulators and a real Kafka broker.

What the simulator wrote to a connection is compared with what landed on the raw topic:
frame counts and byte totals per connection, frame order (per-connection sequence without
gaps), headers, and — through the decoders — every trade id the simulator sent.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from marketpipe import settings as settings_mod
from marketpipe.processors.decode import RawFrame, decode
from marketpipe.rawframe import H_BACKFILL, extra_header, parse_meta
from marketpipe.simulators.runner import run as run_sim
from tests.support.pipeline import quiesce, sent_trade_ids, start_producer, wait_for


def raw_frames(settings: settings_mod.Settings, provider: str, idle: float = 3.0) -> list[Any]:
    topic = settings.topic(f"raw.{provider}")
    consumer = Consumer({**settings.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    out, last = [], time.monotonic()
    while time.monotonic() - last < idle:
        for msg in consumer.consume(1000, timeout=0.3):
            if not msg.error():
                out.append(msg)
                last = time.monotonic()
    consumer.close()
    return out


def stop(proc: subprocess.Popen[bytes], log: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(60)
    return code


def check_lossless(msgs: list[Any], stats: dict[str, Any], provider: str) -> None:
    """Kafka holds exactly what the simulator wrote, in order, with consistent headers."""
    metas = [parse_meta(m.headers()) for m in msgs]
    assert {m.provider for m in metas} == {provider}
    assert len({m.key() for m in msgs}) == 1  # one connection id = one key = one partition
    seqs = [m.seq for m in metas]
    assert seqs == list(range(1, len(seqs) + 1)), "sequence has gaps or is out of order"
    sessions = [m.session for m in metas]
    assert sessions == sorted(sessions)
    assert len(msgs) == stats["totals"]["frames"]
    assert sum(len(m.value()) for m in msgs) == stats["totals"]["bytes"]


def decoded_trade_ids(msgs: list[Any]) -> Counter[str]:
    ids: Counter[str] = Counter()
    for msg in msgs:
        frame = RawFrame("jvquant", msg.value(), parse_meta(msg.headers()), msg.topic(), msg.partition(), msg.offset())
        for rec in decode(frame):
            if rec.schema == "Tick":
                ids[f"{rec.record['venue_symbol']}:{rec.record['trade_id']}"] += 1
    return ids


@pytest.fixture
def env(mp_env: dict[str, str], mp_settings: settings_mod.Settings) -> dict[str, str]:
    return mp_env


def test_jvquant_frames_land_unmodified_and_survive_reconnects(env, mp_settings, tmp_path) -> None:
    record = tmp_path / "sent.jsonl"
    log = tmp_path / "producer.log"
    with run_sim("jvquant", rate=400, symbols=["600519", "000001", "300750"], record=record) as sim:
        proc = start_producer({**env, "JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": "tok"}, "jvquant", log,
                              "--codes", "600519,000001,300750", "--levels", "lv1,lv2",
                              "--backoff-base", "0.1", "--stall-seconds", "2", "--market-hours", "always")
        wait_for(lambda: sim.stats()["totals"].get("data_frames", 0) > 20)
        sim.sim.fault("drop")
        wait_for(lambda: len(sim.stats()["per_connection"]) >= 2)
        first_alloc = sim.sim.allocations
        sim.sim.fault("restart")  # next allocation hands out a new address; the old one refuses
        sim.sim.fault("drop")
        wait_for(lambda: len(sim.stats()["per_connection"]) >= 3)
        assert sim.sim.allocations > first_alloc  # a fresh allocation before every connect
        sim.sim.fault("stall", 4)  # no frames: the producer must notice and reconnect
        wait_for(lambda: len(sim.stats()["per_connection"]) >= 4, timeout=30)
        wait_for(lambda: sim.stats()["totals"].get("data_frames", 0) > 80)
        stats = quiesce(sim, mp_settings)
        assert stop(proc, log) == 0, log.read_text()
    msgs = raw_frames(mp_settings, "jvquant")
    check_lossless(msgs, stats, "jvquant")
    metas = [parse_meta(m.headers()) for m in msgs]
    assert {m.opcode for m in metas} == {"binary", "text"}
    assert all((m.opcode == "binary") == (m.frame == "data") for m in metas)
    assert max(m.session for m in metas) >= 4
    sent = sent_trade_ids(record)
    assert sent and decoded_trade_ids(msgs) == sent  # every trade exactly once
    # the subscription was repeated on every new session
    replies = [m.value().decode() for m, meta in zip(msgs, metas) if meta.opcode == "text"]
    assert len(replies) >= 4
    assert "tok" not in log.read_text()  # the token never reaches the logs


def test_jvquant_bad_token_stops_without_a_retry_storm(env, tmp_path) -> None:
    log = tmp_path / "producer.log"
    with run_sim("jvquant", rate=10, api_key="right") as sim:
        proc = start_producer({**env, "JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": "wrong"}, "jvquant", log)
        code = proc.wait(60)
        assert sim.sim.allocations == 1
    assert code == 3
    text = log.read_text()
    assert "authentication failed" in text and "wrong" not in text


def test_rate_limit_backs_off(env, tmp_path) -> None:
    log = tmp_path / "producer.log"
    with run_sim("jvquant", rate=10) as sim:
        sim.sim.fault("rate_limit", 30)
        proc = start_producer({**env, "JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": "tok"}, "jvquant", log,
                              "--rate-limit-seconds", "3", "--backoff-base", "0.05")
        time.sleep(5)  # the measurement itself: how often the producer asks in these 5 s
        attempts = sim.sim.allocations
        stop(proc, log)
    # without the rate-limit wait a 0.05 s backoff would have asked dozens of times in 5 s
    assert 1 <= attempts <= 3, attempts
    assert "rate limited" in log.read_text()


def test_infoway_subscribes_acks_and_heartbeats(env, mp_settings, tmp_path) -> None:
    log = tmp_path / "producer.log"
    with run_sim("infoway", rate=200, symbols=["BTCUSDT", "ETHUSDT"], api_key="key") as sim:
        proc = start_producer({**env, "INFOWAY_WS_URL": sim.url, "INFOWAY_API_KEY": "key",
                               "INFOWAY_SUBSCRIBE_INTERVAL": "0.2"}, "infoway", log, "--codes", "BTCUSDT,ETHUSDT")
        wait_for(lambda: sim.stats()["totals"].get("frames", 0) > 100)
        sim.sim.fault("drop")
        wait_for(lambda: len(sim.stats()["per_connection"]) >= 2)
        wait_for(lambda: sim.stats()["totals"].get("frames", 0) > 200)
        stats = quiesce(sim, mp_settings)
        assert stop(proc, log) == 0, log.read_text()
    msgs = raw_frames(mp_settings, "infoway")
    check_lossless(msgs, stats, "infoway")
    # after the drop the producer also kept the REST kline backfill (header "backfill"), an answer without "code"
    bodies = [m.value() for m in msgs if not extra_header(parse_meta(m.headers()), H_BACKFILL)]
    assert len(bodies) < len(msgs)
    codes = Counter(json.loads(b)["code"] for b in bodies if b.startswith(b"{"))
    assert codes[10001] == 2 and codes[10004] == 2 and codes[10007] == 2  # acks on both sessions
    assert codes[10002] > 50
    kinds = {parse_meta(m.headers()).frame for m in msgs if json.loads(m.value()).get("code") == 10002}
    assert kinds == {"data"}
    assert {dict(m.headers()).get("kline_types") for m in msgs} == {b"1"}
    assert "key" not in log.read_text().replace("apikey=***", "")


def test_infoway_bad_key_is_a_clear_error(env, tmp_path) -> None:
    log = tmp_path / "producer.log"
    with run_sim("infoway", rate=10, api_key="key") as sim:
        proc = start_producer({**env, "INFOWAY_WS_URL": sim.url, "INFOWAY_API_KEY": "nope"}, "infoway", log)
        assert proc.wait(60) == 3
    assert "HTTP 401" in log.read_text()


def test_jin10_handshake_upgrade_and_quotes(env, mp_settings, tmp_path) -> None:
    log = tmp_path / "producer.log"
    with run_sim("jin10", rate=50, symbols=["XAUUSD", "EURUSD"]) as sim:
        proc = start_producer({**env, "JIN10_URL": sim.base_url}, "jin10", log, "--codes", "XAUUSD,EURUSD")
        wait_for(lambda: sim.stats()["totals"].get("frames", 0) > 40)
        sim.sim.fault("drop")
        wait_for(lambda: sim.stats()["totals"].get("frames", 0) > 80)
        quiesce(sim, mp_settings, exact=False)
        assert stop(proc, log) == 0, log.read_text()
    msgs = raw_frames(mp_settings, "jin10")
    packets = [m.value().decode() for m in msgs]
    opens = [p for p in packets if p.startswith("0{")]
    assert len(opens) >= 2 and len({json.loads(p[1:])["sid"] for p in opens}) == len(opens)  # new sid each time
    assert "3probe" in packets
    quotes = [p for p in packets if p.startswith('42["quote"')]
    assert len(quotes) > 20
    records = [r for m in msgs for r in decode(RawFrame("jin10", m.value(), parse_meta(m.headers())))]
    assert {r.key for r in records} <= {"XAUUSD", "EURUSD"} and records


def test_broker_outage_is_ridden_out_without_losing_frames(tmp_path) -> None:
    """The broker is stopped for 12 s mid-stream and restarted: every frame received arrives.

    This test stops a broker, so it runs its own instead of the session's shared one.
    """
    import os

    from marketpipe.kafka.local import LocalKafka
    from marketpipe.kafka.topics import create_topics
    from marketpipe.runtime.localhost import free_port

    broker = LocalKafka(home=tmp_path / "kafka", port=free_port())
    bootstrap = broker.up()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_"))}
    env.update(KAFKA_BOOTSTRAP_SERVERS=bootstrap, MARKETPIPE_METRICS_PORT="-1", PYTHONUNBUFFERED="1",
               MARKETPIPE_TOPIC_PREFIX="outage.")
    s = settings_mod.load(env)
    create_topics(s.kafka.client_config(), prefix=s.topic_prefix)
    log = tmp_path / "producer.log"
    try:
        with run_sim("jvquant", rate=300, symbols=["600519", "000001"]) as sim:
            proc = start_producer({**env, "JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": "tok"}, "jvquant",
                                  log, "--codes", "600519,000001")
            wait_for(lambda: sim.stats()["totals"].get("data_frames", 0) > 20)
            broker.down()
            during = sim.stats()["totals"]["data_frames"]
            time.sleep(12)  # the scenario itself: a 12 s outage while frames keep arriving
            assert sim.stats()["totals"]["data_frames"] > during + 50  # frames kept arriving meanwhile
            assert proc.poll() is None, log.read_text()
            broker.up()
            stats = quiesce(sim, s)  # the producer reconnects and delivers what it held
            assert stop(proc, log) == 0, log.read_text()
        msgs = raw_frames(s, "jvquant", idle=5)
        check_lossless(msgs, stats, "jvquant")
    finally:
        broker.down()
