"""jvQuant rows (protocols.md §1.4 shapes) -> Quote / Tick / Depth records."""

from __future__ import annotations

import zlib
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from marketpipe.rawframe import RawMeta
from processors.decode import ParseError, RawFrame, decode

CST = ZoneInfo("Asia/Shanghai")
FRAMES = Path(__file__).parent / "frames"
RECV = datetime(2024, 6, 3, 14, 0, 0, tzinfo=CST)  # a Monday afternoon in Shanghai
LV1 = ("lv1_600519=10:15:03,贵州茅台,1572.12,1.25,5123456789.00,3258900,300,1572.10,100,1572.05,200,"
       "1572.00,500,1571.99,100,1571.90,200,1572.12,100,1572.20,300,1572.50,100,1572.58,400,1572.60")


def ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def deflate(text: str) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(text.encode()) + c.flush()


def frame(value: bytes | str, recv: datetime = RECV, opcode: str = "binary", offset: int = 42) -> RawFrame:
    data = deflate(value) if isinstance(value, str) else value
    return RawFrame("jvquant", data, RawMeta("jvquant", "c1", 1, 1, ns(recv), opcode, "data"), "raw.jvquant", 3, offset)


def at(h: int, m: int, s: int, micro: int = 0, day: datetime = RECV) -> int:
    return ms(day.replace(hour=h, minute=m, second=s, microsecond=micro))


def test_lv1_current_order_amount_then_volume() -> None:
    [q] = decode(frame(LV1))
    r = q.record
    assert (q.schema, q.topic, q.key) == ("Quote", "md.quote", "600519.SH")
    assert r["venue_symbol"] == "600519" and r["name"] == "贵州茅台"
    assert r["event_time"] == at(10, 15, 3)
    assert r["receive_time_ns"] == ns(RECV)
    assert (r["last"], r["change_pct"]) == (1572.12, 1.25)
    assert (r["cum_amount"], r["cum_volume"], r["field_order"]) == (5123456789.0, 3258900.0, "amount,volume")
    assert r["bids"][0] == {"price": 1572.10, "size": 300.0} and r["bids"][4] == {"price": 1571.90, "size": 100.0}
    assert r["asks"][0] == {"price": 1572.12, "size": 200.0} and r["asks"][4] == {"price": 1572.60, "size": 400.0}
    assert r["source"] == {"topic": "raw.jvquant", "partition": 3, "offset": 42, "index": 0}


def test_lv1_old_order_volume_then_amount_is_detected() -> None:
    old = LV1.replace("5123456789.00,3258900", "3258900,5123456789.00")
    [q] = decode(frame(old))
    assert q.record["field_order"] == "volume,amount"
    assert (q.record["cum_amount"], q.record["cum_volume"]) == (5123456789.0, 3258900.0)


@pytest.mark.parametrize("f5,f6", [("0", "0"), ("0.00", "100"), ("1000", "1000")])
def test_lv1_ambiguous_amount_volume_defaults_to_current_order(f5: str, f6: str) -> None:
    row = LV1.replace("5123456789.00,3258900", f"{f5},{f6}").replace("1572.12,1.25", "1.000,0.10", 1)
    [q] = decode(frame(row))
    assert q.record["field_order"] == "amount,volume"
    assert (q.record["cum_amount"], q.record["cum_volume"]) == (float(f5), float(f6))


def test_lv1_batched_snapshots_all_kept_and_text_frame_accepted() -> None:
    second = LV1.split("=", 1)[1].replace("10:15:03", "10:15:06").replace("3258900", "3259000")
    out = decode(frame((LV1 + "|" + second).encode()))  # already inflated text, binary opcode
    assert [n.record["event_time"] for n in out] == [at(10, 15, 3), at(10, 15, 6)]
    assert [n.record["source"]["index"] for n in out] == [0, 1]
    assert out[1].record["cum_volume"] == 3259000.0


def test_lv1_index_and_empty_levels() -> None:
    row = "lv1_i000001=15:00:00,上证指数,3100.5,-0.25,400000000000,35000000000" + ",0" * 20
    [q] = decode(frame(row))
    assert q.key == "000001.SH" and q.record["bids"] == [] and q.record["asks"] == []


def test_lv2_trades_with_and_without_millis() -> None:
    out = decode(frame("lv2_000001=09:30:00.120,1234567,10.52,100|09:30:01,1234568,10.51,2000\n"))
    assert [(n.schema, n.topic, n.key) for n in out] == [("Tick", "md.tick", "000001.SZ")] * 2
    a, b = (n.record for n in out)
    assert (a["event_time"], a["price"], a["size"], a["trade_id"]) == (at(9, 30, 0, 120000), 10.52, 100.0, "1234567")
    assert (b["event_time"], b["trade_id"], b["side"], b["session"]) == (at(9, 30, 1), "1234568", "UNKNOWN", None)


def test_frame_with_several_levels_and_codes_matches_fixture() -> None:
    out = decode(frame((FRAMES / "jvquant_lv1_lv2.deflate").read_bytes()))
    assert [n.schema for n in out] == ["Quote", "Tick", "Tick"]
    assert [n.record["source"]["index"] for n in out] == [0, 1, 2]
    assert decode(frame((FRAMES / "jvquant_lv1_lv2.txt").read_bytes())) == out


def lv10_row(prices_first: bool) -> str:
    bp = [f"{10.50 - i / 100:.2f}" for i in range(10)]
    ap = [f"{10.51 + i / 100:.2f}" for i in range(10)]
    bq = [str(100 * (i + 1)) for i in range(10)]
    aq = [str(300 + i) for i in range(10)]
    blocks = bp + bq + ap + aq if prices_first else bq + bp + aq + ap
    return "lv10_300750=10:00:00,宁德时代,10.51,10.40,123456789.0,12345678," + ",".join(blocks)


@pytest.mark.parametrize("prices_first", [True, False])
def test_lv10_both_block_orders_give_the_same_book(prices_first: bool) -> None:
    [d] = decode(frame(lv10_row(prices_first)))
    assert (d.schema, d.topic, d.key) == ("Depth", "md.depth", "300750.SZ")
    assert len(d.record["bids"]) == 10 and len(d.record["asks"]) == 10
    assert d.record["bids"][0] == {"price": 10.50, "size": 100.0}
    assert d.record["bids"][9] == {"price": 10.41, "size": 1000.0}
    assert d.record["asks"][9] == {"price": 10.60, "size": 309.0}


def test_hk_lv1_47_fields_and_hk_lv2_pairs() -> None:
    book = ",".join(f"{100 * (i + 1)},{380 - i * 0.2:.1f}" for i in range(10)) + "," + \
        ",".join(f"{200 * (i + 1)},{380.2 + i * 0.2:.1f}" for i in range(10))
    rows = f"lv1_00700=10:00:00,TENCENT,腾讯控股,380.2,1.5,9876543210,26000000,{book}\n" \
           "lv2_00700=10:00:01.5,88,380.2,100,380.4,300"
    q, t1, t2 = decode(frame(rows))
    assert q.key == "00700.HK" and q.record["name"] == "腾讯控股" and len(q.record["bids"]) == 10
    assert q.record["asks"][9] == {"price": 382.0, "size": 2000.0}
    assert q.record["field_order"] == "amount,volume"
    assert (t1.record["trade_id"], t2.record["trade_id"]) == ("88", "88#1")
    assert (t2.record["price"], t2.record["size"], t2.record["event_time"]) == (380.4, 300.0, at(10, 0, 1, 500000))


def test_us_lv1_and_lv2_with_session() -> None:
    rows = "lv1_aapl=aapl,190.5,0.8,1905000000,10000000,21:30:05,21:30:05\nlv2_aapl=21:30:06,RTH,777,190.51,10|22:00:00,aft,778,190.6,5"
    q, a, b = decode(frame(rows))
    assert q.key == "AAPL.US" and q.record["venue_symbol"] == "aapl" and q.record["cum_volume"] == 1e7
    assert q.record["event_time"] == at(21, 30, 5)
    assert (a.key, a.record["session"], a.record["trade_id"]) == ("AAPL.US", "RTH", "777")
    assert b.record["session"] == "AFT"


def test_clock_time_just_before_midnight_received_just_after() -> None:
    recv = datetime(2024, 6, 4, 0, 0, 5, tzinfo=CST)
    [t] = decode(frame("lv2_600000=23:59:59.900,1,7.5,100", recv=recv))
    assert t.record["event_time"] == ms(datetime(2024, 6, 3, 23, 59, 59, 900000, tzinfo=CST))
    [t] = decode(frame("lv2_600000=00:00:01,2,7.5,100", recv=datetime(2024, 6, 3, 23, 59, 58, tzinfo=CST)))
    assert t.record["event_time"] == ms(datetime(2024, 6, 4, 0, 0, 1, tzinfo=CST))


def test_text_command_reply_is_control_but_binary_garbage_is_an_error() -> None:
    assert decode(frame(b"add lv1_600519 ok", opcode="text")) == []
    with pytest.raises(ParseError, match="jvquant"):
        decode(frame(b"\x01\x02\xffnot deflate"))
    with pytest.raises(ParseError):
        decode(frame(deflate("hello")))


def test_bad_row_keeps_good_rows_as_partial() -> None:
    with pytest.raises(ParseError) as info:
        decode(frame("lv2_600000=09:30:00,1,7.5,100\nlv2_600000=09:30:xx,2,7.5,100\nlv9_600000=1"))
    err = info.value
    assert "2 bad row(s)" in str(err) and "row 1" in str(err) and "\n" not in str(err)
    assert [n.record["trade_id"] for n in err.partial] == ["1"]


@pytest.mark.parametrize("row", [
    "lv1_600519=10:15:03,x,1",  # too few fields
    "lv2_600519=09:30:00,1,abc,100",  # price not a number
    "lv2_600519=09:30:00,1,nan,100",
    "lv2_600519=25:30:00,1,7,100",  # hour out of range
    "lv2_ABC!=09:30:00,1,7,100",  # bad code
    "lv2_aapl=09:30:00,1,7,100",  # US row without session
])
def test_malformed_rows_raise_parse_error(row: str) -> None:
    with pytest.raises(ParseError):
        decode(frame(row))


def test_hk_row_in_a_share_layout_is_tolerated() -> None:
    [q] = decode(frame(LV1.replace("lv1_600519", "lv1_00700")))
    assert q.key == "00700.HK" and len(q.record["bids"]) == 5 and q.record["cum_volume"] == 3258900.0
