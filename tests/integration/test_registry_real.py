"""The Confluent wire format against a real Schema Registry (Apicurio, started once per session by
the ``schema_registry_url`` fixture of marketpipe.testing), not the in-process fake of test_codec:

* every schema of the contract registers under ``<topic>-value`` with BACKWARD_TRANSITIVE and
  round-trips through ids the registry hands out;
* a breaking schema change is refused three ways that must agree: by the registry, by the offline
  ``freeze`` check (evolution.py) and by the Avro project's own compatibility checker;
* the processor, the client, ``tail``, ``replay`` and ``dlq redrive`` read topics holding records
  written both with the registry (Confluent framing) and without it (single-object encoding).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from marketpipe import settings as settings_mod
from marketpipe.client import Tick, TopicConsumer
from marketpipe.kafka import topics
from marketpipe.schemas import codec as codec_mod
from marketpipe.schemas import evolution
from marketpipe.schemas.codec import Codec, CodecError, SchemaRegistry, schemas
from marketpipe.testing import read_topic, start_worker, stop_worker
from tests.support.codec_samples import records

SAMPLES = dict(records())


def compatibility_of(url: str, subject: str) -> str:
    with urllib.request.urlopen(f"{url}/config/{subject}", timeout=10) as resp:
        answer = json.loads(resp.read())
    return answer.get("compatibilityLevel") or answer.get("compatibility")


def test_every_schema_round_trips_through_the_real_registry(schema_registry_url: str) -> None:
    ns = f"t{uuid.uuid4().hex[:8]}"
    writer = Codec(SchemaRegistry(schema_registry_url))
    for name, record in SAMPLES.items():
        data = writer.encode(name, record, topic=f"{ns}.{name}")
        assert data[:1] == b"\x00"
        # a reader that never wrote: the id is resolved by asking the registry
        decoded = Codec(SchemaRegistry(schema_registry_url)).decode(data)
        assert (decoded.schema, decoded.framing, decoded.record) == (name, "confluent", record)
        assert compatibility_of(schema_registry_url, f"{ns}.{name}-value") == "BACKWARD_TRANSITIVE"
    # registering the same schema again answers the same id (a restarted producer keeps its ids)
    tick = SAMPLES["Tick"]
    first = Codec(SchemaRegistry(schema_registry_url)).encode("Tick", tick, topic=f"{ns}.Tick")
    assert first[:5] == writer.encode("Tick", tick, topic=f"{ns}.Tick")[:5]


def _tick_with(change: str) -> dict[str, Any]:
    doc = json.loads(schemas()["Tick"].document)
    if change == "breaking":  # a new field without default: new readers cannot read old ticks
        doc["fields"].append({"name": "venue", "type": "string"})
    else:  # the compatible way to add it
        doc["fields"].append({"name": "venue", "type": "string", "default": ""})
    return doc


def _avro_says_compatible(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    import avro.schema
    from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(json.dumps(reader)), avro.schema.parse(json.dumps(writer)))
    return bool(result.compatibility is SchemaCompatibilityType.compatible)


def _freeze_with(monkeypatch: pytest.MonkeyPatch, history: Path, tick: dict[str, Any]) -> list[str]:
    current = dict(schemas())
    current["Tick"] = codec_mod._load("Tick", tick)
    monkeypatch.setattr(codec_mod, "schemas", lambda: current)
    return evolution.freeze(history)


@pytest.mark.parametrize("change", ["breaking", "compatible"])
def test_a_breaking_change_is_refused_by_the_registry_freeze_and_avro(
        change: str, schema_registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = json.loads(schemas()["Tick"].document)
    new = _tick_with(change)
    subject_topic = f"t{uuid.uuid4().hex[:8]}.md.tick"
    registry = SchemaRegistry(schema_registry_url)
    Codec(registry).encode("Tick", SAMPLES["Tick"], topic=subject_topic)

    # 1. the registry, under the compatibility the codec set for the subject
    try:
        registry.register(f"{subject_topic}-value", json.dumps(new))
        registry_refused = False
    except CodecError as exc:
        assert "HTTP 409" in str(exc)
        registry_refused = True
    # 2. the offline check that keeps marketpipe/schemas/history (on a copy of it)
    history = tmp_path / "history"
    history.mkdir()
    for kept in evolution.HISTORY_DIR.glob("*.avsc"):
        (history / kept.name).write_text(kept.read_text(encoding="utf-8"), encoding="utf-8")
    try:
        written = _freeze_with(monkeypatch, history, new)
        freeze_refused = False
    except ValueError as exc:
        assert "Tick" in str(exc)
        freeze_refused = True
    # 3. the Avro project's checker: the new reader on data the old schema wrote (backward)
    avro_refused = not _avro_says_compatible(reader=new, writer=old)

    expected = change == "breaking"
    assert (registry_refused, freeze_refused, avro_refused) == (expected, expected, expected)
    if not expected:
        assert any(name.startswith("Tick.v") for name in written)


# ---------------------------------------------------------------------------------------------
# Topics holding both framings


def framings(s: settings_mod.Settings, logical: str, n: int, timeout: float = 60.0) -> list[str]:
    """The framing of each of the first ``n`` records of a topic, by their first bytes."""
    topic = s.topic(logical)
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for msg in consumer.consume(100, timeout=0.5):
            if not msg.error():
                out.append("confluent" if msg.value()[:1] == b"\x00" else "single-object")
    consumer.close()
    return out


def marketpipe(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marketpipe", *args], env=env, capture_output=True, text=True,
                          timeout=180)


def test_processor_client_tail_and_replay_read_both_framings(mp_env, mp_settings, schema_registry_url,
                                                            tmp_path) -> None:
    from tests.support.feeder import Feeder

    env = {**mp_env, "SCHEMA_REGISTRY_URL": schema_registry_url, "MARKETPIPE_PROCESSOR_SESSION_TIMEOUT": "6s"}
    s = settings_mod.load(env)
    # one tick written before the registry came in: single-object encoding
    old_tick = {**SAMPLES["Tick"], "symbol": "OLD.TICK", "provider": "infoway"}
    producer = Producer(s.kafka.client_config())
    producer.produce(s.topic(topics.MD_TICK), key=b"OLD.TICK", value=Codec().encode("Tick", old_tick))
    assert producer.flush(30) == 0
    feed = Feeder(s)
    base = int(time.time() * 1000) - 20_000
    for i in range(20):
        feed.trade("iw-1", "BTCUSDT", 60000 + i, base + i * 100)
    feed.flush()
    worker = start_worker(env, tmp_path / "worker.log")
    try:
        ticks = read_topic(s, "md.tick", until=21, idle=15)
    finally:
        stop_worker(worker)
    assert len(ticks) == 21, (tmp_path / "worker.log").read_text()[-2000:]
    assert sorted(framings(s, "md.tick", 21)) == ["confluent"] * 20 + ["single-object"]
    assert compatibility_of(schema_registry_url, f"{s.topic('md.tick')}-value") == "BACKWARD_TRANSITIVE"

    with TopicConsumer(["md.tick"], settings=s, start="earliest") as consumer:
        got: list[Any] = []
        deadline = time.monotonic() + 30
        while len(got) < 21 and time.monotonic() < deadline:
            got += consumer.consume(21 - len(got), timeout=1.0)
    assert all(isinstance(t, Tick) for t in got)
    assert sorted({t.symbol for t in got}) == ["BTCUSDT", "OLD.TICK"] and len(got) == 21

    tailed = marketpipe(env, "tail", "md.tick", "--from-beginning", "--limit", "21", "--json", "--idle-exit", "10")
    assert tailed.returncode == 0, tailed.stderr
    lines = [json.loads(line) for line in tailed.stdout.splitlines()]
    assert len(lines) == 21 and {line["schema"] for line in lines} == {"Tick"}

    replay_prefix = s.topic_prefix + "replay."
    run = marketpipe(env, "replay", "infoway", "--since", "10m", "--to-prefix", replay_prefix)
    assert run.returncode == 0, run.stderr
    replayed = s.with_env(MARKETPIPE_TOPIC_PREFIX=replay_prefix)
    assert len(read_topic(replayed, "md.tick", until=20, idle=5)) == 20
    assert framings(replayed, "md.tick", 20) == ["confluent"] * 20


def test_dead_letters_of_both_framings_are_listed_and_redriven(mp_env, mp_settings, schema_registry_url) -> None:
    import datetime as dt

    from marketpipe.rawframe import RawMeta
    from tests.integration.test_replay_dlq import CORPUS, _letter

    env = {**mp_env, "SCHEMA_REGISTRY_URL": schema_registry_url}
    s = settings_mod.load(env)
    recv = dt.datetime.fromisoformat("2025-07-08T15:00:30+08:00")
    headers = dict((k, v.decode()) for k, v in
                   RawMeta("infoway", "iw-1", 1, 1, int(recv.timestamp()) * 10**9, "text", "data",
                           (("kline_types", "1"),)).headers())
    kline = (CORPUS / "kline_resplist.json").read_bytes()
    dlq = s.topic(topics.MD_DLQ)
    producer = Producer(s.kafka.client_config())
    with_registry = Codec(SchemaRegistry(schema_registry_url))
    producer.produce(dlq, key=b"infoway", value=Codec().encode(
        "DeadLetter", _letter(kline, "infoway: field 'ty' missing", headers, 7)))
    producer.produce(dlq, key=b"infoway", value=with_registry.encode(
        "DeadLetter", copy.deepcopy(_letter(kline, "infoway: field 'ty' missing", headers, 8)), topic=dlq))
    assert producer.flush(30) == 0

    listed = marketpipe(env, "dlq", "list", "--since", "1h")
    assert listed.returncode == 0, listed.stderr
    assert "2 dead letters in 1 reasons" in listed.stdout
    run = marketpipe(env, "dlq", "redrive", "--since", "1h")
    assert run.returncode == 0, run.stderr
    assert "2 fixed (2 records published)" in run.stdout
    assert len(read_topic(s, "md.kline", until=2, idle=5)) == 2
    assert framings(s, "md.kline", 2) == ["confluent", "confluent"]


def test_processes_registering_one_subject_at_once_all_get_its_id(schema_registry_url: str) -> None:
    # the demo's producers start together and all write md.status: Apicurio answered the
    # losers of that race 409 "already exists", and their producer exited
    import threading

    subject = f"t{uuid.uuid4().hex[:8]}.md.status-value"
    document = schemas()["FeedStatus"].document
    ids: list[int] = []
    errors: list[Exception] = []
    start = threading.Barrier(8)

    def register() -> None:
        start.wait()
        try:
            ids.append(SchemaRegistry(schema_registry_url).register(subject, document))
        except CodecError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(ids) == 8 and len(set(ids)) == 1
