"""Every record the decoders produce is exactly an Avro record of its schema."""

from __future__ import annotations

import pytest

from marketpipe.processors.decode import RawFrame, decode
from marketpipe.rawframe import RawMeta
from marketpipe.schemas.codec import Codec, schema
from tests.support.paths import FRAMES

RECV_NS = 1786775236000000000
SAMPLES = [
    ("infoway", "infoway_trade.json"), ("infoway", "infoway_depth.json"), ("infoway", "infoway_kline.json"),
    ("jvquant", "jvquant_lv1_lv2.deflate"), ("jin10", "jin10_quote.txt"),
]
EXTRA = [
    ("jvquant", "lv10_600519=10:00:00,x,10.5,10.4,1,1," + ",".join(["10.5"] * 10 + ["100"] * 10 + ["10.6"] * 10 + ["1"] * 10)),
    ("jvquant", "lv1_aapl=aapl,190.5,0.8,1905000000,10000000,21:30:05,21:30:05\nlv2_aapl=21:30:06,PRE,777,190.51,10"),
    ("jin10", '42["quote",{"code":"SH1A0001","last":3100}]'),
]


def frames() -> list[RawFrame]:
    out = [(p, (FRAMES / name).read_bytes()) for p, name in SAMPLES] + [(p, v.encode()) for p, v in EXTRA]
    return [RawFrame(p, v, RawMeta(p, "c", 1, 1, RECV_NS, "binary", "data"), f"raw.{p}", 2, 7) for p, v in out]


@pytest.mark.parametrize("raw", frames(), ids=lambda f: f.provider)
def test_records_encode_and_round_trip(raw: RawFrame) -> None:
    codec = Codec()
    out = decode(raw)
    assert out
    for n in out:
        fields = [f["name"] for f in schema(n.schema).parsed["fields"]]
        assert list(n.record) == fields  # exactly the schema's fields, nothing extra
        back = codec.decode(codec.encode(n.schema, n.record))
        assert back.schema == n.schema and back.record == n.record
        assert n.key == n.record["symbol"] and n.event_time == n.record["event_time"]
        assert n.topic == {"Tick": "md.tick", "Depth": "md.depth", "Quote": "md.quote", "Kline": "md.kline"}[n.schema]


def test_dead_letter_record_encodes_and_carries_the_cli_reason() -> None:
    from marketpipe.processors.deadletter import dead_letter
    from marketpipe.processors.decode import ParseError

    raw = RawFrame("infoway", b"garbage\n", RawMeta("infoway", "c", 1, 1, RECV_NS, "text", "data"), "raw.infoway", 4, 77)
    with pytest.raises(ParseError) as info:
        decode(raw)
    record = dead_letter(raw, info.value, 1786775240000, {"provider": "infoway"})
    back = Codec().decode(Codec().encode("DeadLetter", record)).record
    assert back["reason"] == str(info.value) and back["raw"] == b"garbage\n" and back["error_type"] == "ParseError"
    assert back["source"] == {"topic": "raw.infoway", "partition": 4, "offset": 77, "index": -1}
