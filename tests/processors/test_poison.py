"""Poison records: one frame the processor cannot handle is dead-lettered, counted and skipped;
the worker never dies on it and the records behind it still come out."""

from __future__ import annotations

import pytest

from marketpipe.kafka import topics

# ---- the pieces, without a broker ------------------------------------------------------------

def _letter(raw: bytes) -> dict:
    return {"provider": "infoway", "symbol": "", "event_time": 1, "receive_time_ns": 2, "reason": "infoway: bad",
            "error_type": "ParseError", "raw": raw, "headers": {"connection": "iw-1"}, "parser_version": "v",
            "source": {"topic": "raw.infoway", "partition": 3, "offset": 41, "index": -1}}


@pytest.fixture
def app_module():
    import importlib

    return importlib.import_module("marketpipe.processors.output")


def test_an_oversize_dead_letter_carries_the_digest_and_a_pointer(app_module) -> None:
    import hashlib

    from marketpipe.schemas.codec import Codec
    from marketpipe.settings import load

    out = app_module.Output(load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}))
    written: list[tuple] = []
    out.produce = lambda *item: written.append(item)  # type: ignore[method-assign]
    small, big = b"\xff" * 1000, bytes(range(256)) * 8192  # 2 MiB
    out.dead_letter(_letter(small), "infoway")
    out.dead_letter(_letter(big), "infoway")
    kept, digest = (Codec().decode(item[2]).record for item in written)
    assert kept["raw"] == small and kept["raw_length"] == 1000 and kept["raw_sha256"] == ""
    assert len(written[1][2]) < topics.DEAD_LETTER_SAFE_BYTES
    assert digest["raw"] == b"" and digest["raw_length"] == len(big)
    assert digest["raw_sha256"] == hashlib.sha256(big).hexdigest()
    assert digest["source"] == {"topic": "raw.infoway", "partition": 3, "offset": 41, "index": -1}
    assert digest["reason"] == "infoway: bad" and written[1][0] == "md.dlq"


def test_dead_letters_written_before_the_digest_fields_still_read() -> None:
    import io

    import fastavro

    from marketpipe.schemas.codec import SINGLE_OBJECT_MAGIC, Codec, kept_writers, schemas

    current = schemas()["DeadLetter"].fingerprint
    [(fp, writer)] = [(fp, w) for fp, (w, s) in kept_writers().items() if s.name == "DeadLetter" and fp != current]
    buf = io.BytesIO()
    buf.write(SINGLE_OBJECT_MAGIC + fp)
    old = _letter(b"frame")
    fastavro.schemaless_writer(buf, writer, old)
    back = Codec().decode(buf.getvalue())
    assert back.schema == "DeadLetter" and back.record["raw"] == b"frame"
    assert back.record["raw_length"] == -1 and back.record["raw_sha256"] == ""


def test_the_raw_sink_takes_frames_as_large_as_raw_topics_do() -> None:
    from marketpipe.producers.sink import RawSink
    from marketpipe.rawframe import RawMeta
    from marketpipe.settings import load

    sink = RawSink(load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}), "jvquant", "raw.jvquant")
    frame = b"\x00" * (4 * 1024 * 1024)  # 4 MiB: under the raw topics' 8 MiB, over librdkafka's 1 MB default
    sink.send(frame, RawMeta("jvquant", "c", 1, 1, 0, "binary", "data"))
    assert sink.sent == 1
    assert int(topics.by_name("raw.jvquant").config["max.message.bytes"]) <= topics.PRODUCER_MAX_MESSAGE_BYTES
    assert sink.close(0) == 1  # nothing listens there: still queued, not refused
