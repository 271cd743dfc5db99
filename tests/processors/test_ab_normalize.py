"""A/B capture through the Normalizer: frames of two lines of one connection, arbitrated by each
provider's content identity (marketpipe/providers/*/identity.py), without a broker."""

from __future__ import annotations

from prometheus_client import REGISTRY

from marketpipe.processors.arbitrate import Arbiter
from marketpipe.processors.normalize import Normalizer, RawRecord
from marketpipe.processors.output import Output
from marketpipe.providers import get
from marketpipe.rawframe import RawMeta
from tests.processors.test_inprocess import LV1_ROW, Collect, deflate, settings, shanghai_ns


def line_record(line: str, text: str, offset: int, seq: int, recv_ns: int) -> RawRecord:
    meta = RawMeta("jvquant", "jvquant-ab", seq, 1, recv_ns, "binary", "data", (("line", line),) if line else ())
    return RawRecord("p.raw.jvquant", 0, offset, deflate(text), meta.headers())


def dropped() -> float:
    return REGISTRY.get_sample_value("marketpipe_processor_ab_duplicates_total", {"provider": "jvquant"}) or 0.0


def run(frames: list[RawRecord]) -> Collect:
    sink = Collect()
    n = Normalizer(Output(settings(), producer=sink), arbiter=Arbiter())
    for f in frames:
        n.process("jvquant", f)
    return sink


def test_trades_both_lines_carry_are_published_once_and_the_first_copy_wins() -> None:
    recv = shanghai_ns("10:00:01")
    before = dropped()
    sink = run([
        line_record("A", "lv2_600519=10:00:00.120,77001,1572.12,100|77002,10:00:00.350,1572.10,200", 0, 1, recv),
        line_record("B", "lv2_600519=10:00:00.120,77001,1572.12,100|77002,10:00:00.350,1572.10,200", 1, 1, recv + 5),
        # B got 77003 first, A lost the frame with 77004
        line_record("B", "lv2_600519=10:00:00.500,77003,1572.00,100|77004,10:00:00.600,1572.00,300", 2, 2, recv + 9),
        line_record("A", "lv2_600519=10:00:00.500,77003,1572.00,100", 3, 2, recv + 12),
    ])
    ticks = sink.records("p.md.tick")
    assert [t["trade_id"] for t in ticks] == ["77001", "77002", "77003", "77004"]
    assert [t["source"]["offset"] for t in ticks] == [0, 0, 2, 2]
    assert dropped() - before == 3


def test_level1_snapshots_are_one_by_symbol_time_and_cumulative_volume() -> None:
    row = LV1_ROW.format(s="03", vol=1000, amt=1572120)
    newer = LV1_ROW.format(s="03", vol=1100, amt=1729332)  # same second, a trade in between
    recv = shanghai_ns("10:00:04")
    sink = run([line_record("A", row, 0, 1, recv), line_record("B", row, 1, 1, recv + 3),
                line_record("B", newer, 2, 2, recv + 5)])
    assert [q["cum_volume"] for q in sink.records("p.md.quote")] == [1000, 1100]


def test_frames_without_a_line_are_not_arbitrated() -> None:
    text = "lv2_600519=10:00:00.120,77001,1572.12,100"
    recv = shanghai_ns("10:00:01")
    sink = run([line_record("", text, 0, 1, recv), line_record("", text, 1, 2, recv)])
    assert len(sink.records("p.md.tick")) == 2  # the provider's own repeat, published as ever


def test_infoway_trades_are_one_by_symbol_time_price_volume_and_side() -> None:
    ident = get("infoway").load_identity()
    trade = {"event_time": 1, "price": 2.0, "size": 3.0, "side": "buy", "receive_time_ns": 5, "source": {"offset": 1}}
    assert ident("Tick", "AAPL.US", trade) == ident("Tick", "AAPL.US", {**trade, "receive_time_ns": 9,
                                                                         "source": {"offset": 2}})
    assert ident("Tick", "AAPL.US", trade) != ident("Tick", "AAPL.US", {**trade, "side": "sell"})
    depth = {"event_time": 1, "bids": [{"price": 1.0, "size": 2.0}], "receive_time_ns": 5}
    assert ident("Depth", "AAPL.US", depth) == ident("Depth", "AAPL.US", {**depth, "receive_time_ns": 6})
