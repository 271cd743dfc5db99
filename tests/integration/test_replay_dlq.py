"""``marketpipe replay`` and ``marketpipe dlq`` against a real broker: a replayed raw range gives
exactly the records the live processor produced (same ``source`` set), and dead letters written
by an older parser are redriven by today's decoders."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

from confluent_kafka import Producer

from marketpipe.kafka import topics
from marketpipe.rawframe import RawMeta
from marketpipe.schemas.codec import Codec
from marketpipe.simulators.market import shanghai_hms
from tests.support.feeder import Feeder, deflate
from tests.support.paths import CONFORMANCE
from tests.support.pipeline import read_topic, source_key, start_worker, stop_worker

CORPUS = CONFORMANCE / "infoway"


def marketpipe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marketpipe", *args], env=env, capture_output=True, text=True,
                          timeout=180)


def test_replay_into_another_prefix_gives_the_live_records(mp_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    feed = Feeder(s)
    base = int(time.time() * 1000) - 20_000
    for i in range(60):
        feed.trade("iw-1", "BTCUSDT" if i % 2 else "ETHUSDT", 60000 + i, base + i * 100)
    feed.send("infoway", "iw-1", b"\xff\xfe not a frame", "binary")
    t = shanghai_hms(int(time.time() * 1000) - 5000)  # a clock time just before now (see test_processor_app)
    lv2 = f"lv2_600519={t}.120,1234567,1572.12,100|1234568,{t}.150,1572.10,200"
    feed.send("jvquant", "jv-1", deflate(lv2), "binary")
    feed.flush()
    proc = start_worker({**mp_env, "MARKETPIPE_PROCESSOR_SESSION_TIMEOUT": "6s"}, tmp_path / "worker.log")
    try:
        live = read_topic(s, "md.tick", until=62, idle=15)
    finally:
        stop_worker(proc)
    assert len(live) == 62, (tmp_path / "worker.log").read_text()[-2000:]

    replay_prefix = s.topic_prefix + "replay."
    for provider in ("infoway", "jvquant"):
        run = marketpipe(mp_env, "replay", provider, "--since", "10m", "--to-prefix", replay_prefix)
        assert run.returncode == 0, run.stderr
        assert f"to {replay_prefix}md.*" in run.stdout
    assert "replayed 1 frames of" in run.stdout and "2 records and 0 dead letters" in run.stdout
    replayed = read_topic(s.with_env(MARKETPIPE_TOPIC_PREFIX=replay_prefix), "md.tick", until=62, idle=5)
    assert {source_key(t) for t in replayed} == {source_key(t) for t in live}
    assert len(replayed) == len(live)
    dlq = read_topic(s.with_env(MARKETPIPE_TOPIC_PREFIX=replay_prefix), "md.dlq", idle=2)
    assert [d["raw"] for d in dlq] == [b"\xff\xfe not a frame"]

    # --symbols keeps only those symbols; --until before the first frame replays nothing
    only = replay_prefix + "btc."
    run = marketpipe(mp_env, "replay", "infoway", "--since", "10m", "--symbols", "BTCUSDT", "--to-prefix", only)
    assert run.returncode == 0, run.stderr
    btc = read_topic(s.with_env(MARKETPIPE_TOPIC_PREFIX=only), "md.tick", until=30, idle=5)
    assert {t["symbol"] for t in btc} == {"BTCUSDT"} and len(btc) == 30
    run = marketpipe(mp_env, "replay", "infoway", "--since", "10m", "--until", str(base - 60_000),
                     "--to-prefix", only)
    assert run.returncode == 0 and "replayed 0 frames" in run.stdout


def _letter(raw: bytes, reason: str, headers: dict[str, str], offset: int, **extra: object) -> dict[str, object]:
    return {"provider": "infoway", "symbol": "", "event_time": int(time.time() * 1000), "receive_time_ns": 0,
            "reason": reason, "error_type": "ParseError", "raw": raw, "headers": headers,
            "source": {"topic": "elsewhere", "partition": 0, "offset": offset, "index": -1},
            "parser_version": "decode-1.0", **extra}


def test_dead_letters_of_an_older_parser_are_redriven(mp_env, mp_settings) -> None:
    s = mp_settings
    recv = dt.datetime.fromisoformat("2025-07-08T15:00:30+08:00")
    headers = dict((k, v.decode()) for k, v in
                   RawMeta("infoway", "iw-1", 1, 1, int(recv.timestamp()) * 10**9, "text", "data",
                           (("kline_types", "1"),)).headers())
    kline = (CORPUS / "kline_resplist.json").read_bytes()
    # the same documented kline frame, kept on the raw topic: a dead letter in digest form points at it
    producer = Producer(s.kafka.client_config())
    raw_topic = s.topic(topics.RAW_TOPICS["infoway"])
    producer.produce(raw_topic, key=b"iw-1", value=kline, headers=list(headers.items()), partition=0)
    codec = Codec()
    dlq = s.topic(topics.MD_DLQ)
    letters = [
        # what the decoder before this change wrote for the shape the document prints
        _letter(kline, "infoway: field 'ty' missing", headers, 7),
        _letter(b"\x00 still garbage", "infoway: not JSON", headers, 8),
        {**_letter(b"", "infoway: field 'ty' missing", headers, 0, raw_length=len(kline), raw_sha256="x"),
         "source": {"topic": raw_topic, "partition": 0, "offset": 0, "index": -1}},
    ]
    for letter in letters:
        producer.produce(dlq, key=b"infoway", value=codec.encode("DeadLetter", letter))
    assert producer.flush(30) == 0

    listed = marketpipe(mp_env, "dlq", "list", "--since", "1h")
    assert listed.returncode == 0, listed.stderr
    assert "2  infoway" in listed.stdout and "field 'ty' missing" in listed.stdout
    assert "3 dead letters in 2 reasons" in listed.stdout
    only = marketpipe(mp_env, "dlq", "list", "--reason", "NOT json")
    assert "1 dead letters in 1 reasons" in only.stdout

    run = marketpipe(mp_env, "dlq", "redrive", "--since", "1h")
    assert run.returncode == 0, run.stderr
    assert "2 fixed (2 records published), 1 still failing" in run.stdout
    klines = read_topic(s, "md.kline", until=2, idle=5)
    assert sorted(k["source"]["topic"] for k in klines) == sorted(["elsewhere", raw_topic])
    assert {(k["symbol"], k["close"], k["volume"]) for k in klines} == {("002594.SZ", 326.88, 1410.0)}
    assert len(read_topic(s, "md.dlq", idle=2)) == 3  # redrive writes no dead letters of its own
