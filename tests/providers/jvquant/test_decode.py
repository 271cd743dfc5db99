"""jvQuant rows (protocols.md §1.4 shapes) -> Quote / Tick / Depth records."""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from marketpipe.processors.decode import ParseError, RawFrame, decode
from marketpipe.rawframe import RawMeta
from tests.support.paths import FRAMES

CST = ZoneInfo("Asia/Shanghai")
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
def test_lv1_ambiguous_amount_volume_defaults_to_documented_order(f5: str, f6: str) -> None:
    # the jvQuant quote document: 成交量 (volume) then 成交额 (amount) when the numbers cannot tell
    row = LV1.replace("5123456789.00,3258900", f"{f5},{f6}").replace("1572.12,1.25", "1.000,0.10", 1)
    [q] = decode(frame(row))
    assert q.record["field_order"] == "volume,amount"
    assert (q.record["cum_volume"], q.record["cum_amount"]) == (float(f5), float(f6))


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
    rows = ("lv1_aapl=aapl,190.5,0.8,1905000000,10000000,21:30:05,21:30:05\n"
            "lv2_aapl=21:30:06,RTH,777,190.51,10|22:00:00,aft,778,190.6,5")
    # received just after the last trade: a clock time is never dated more than 1 h ahead of its receipt
    q, a, b = decode(frame(rows, recv=RECV.replace(hour=22, minute=0, second=10)))
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


# ---- documented shapes (the jvQuant quote and trade documents; protocols.md §0) ----

from marketpipe.processors.decode import DecoderState  # noqa: E402
from marketpipe.processors.decode import metrics as decode_metrics  # noqa: E402

#: jvQuant document field order: time, name, price, ratio, 成交量 (volume), 成交额 (amount), 5+5 (qty, price)
BOOK5 = ",".join(["300,1.000,100,0.999,200,0.998,500,0.997,100,0.996",
                  "200,1.001,300,1.002,100,1.003,400,1.004,100,1.005"])


def lv1_doc_row(code: str, name: str, price: str, f5: str, f6: str, clock: str = "10:15:03", book: str = BOOK5) -> str:
    return f"lv1_{code}={clock},{name},{price},0.10,{f5},{f6},{book}"


def counter(c: object, **labels: str) -> float:
    target = c.labels(**labels) if labels else c  # type: ignore[attr-defined]
    return float(target._value.get())  # type: ignore[attr-defined]


def test_lv1_etf_priced_near_one_in_documented_order_keeps_volume_then_amount() -> None:
    # an ETF at 1.000: amount ≈ volume, so the numbers cannot tell the orders apart
    [q] = decode(frame(lv1_doc_row("512170", "医疗ETF", "1.000", "98765400", "98800012.50")), DecoderState())
    assert q.record["field_order"] == "volume,amount"
    assert (q.record["cum_volume"], q.record["cum_amount"]) == (98765400.0, 98800012.5)


def test_lv1_index_defaults_to_documented_order() -> None:
    row = "lv1_i000001=15:00:00,上证指数,3100.5,-0.25,35000000000,400000000000" + ",0" * 20
    [q] = decode(frame(row), DecoderState())
    assert q.record["field_order"] == "volume,amount"
    assert (q.record["cum_volume"], q.record["cum_amount"]) == (35000000000.0, 400000000000.0)


def test_lv1_order_is_decided_per_symbol_and_sticks() -> None:
    state = DecoderState()
    before = counter(decode_metrics.LV1_ORDER_CONTRADICTIONS, provider="jvquant")
    # 600000 at 10.00 sends amount before volume: only that reading gives a VWAP near the price
    [a] = decode(frame(lv1_doc_row("600000", "浦发银行", "10.00", "100500000.00", "10000000")), state)
    assert a.record["field_order"] == "amount,volume" and a.record["cum_volume"] == 10000000.0
    # an undecidable row of the same symbol (nothing traded yet in this reading) keeps the decision
    [b] = decode(frame(lv1_doc_row("600000", "浦发银行", "10.00", "0", "0")), state)
    assert b.record["field_order"] == "amount,volume"
    # a contradicting row is counted and does not flip the decision
    [c] = decode(frame(lv1_doc_row("600000", "浦发银行", "10.00", "10000000", "100500000.00")), state)
    assert c.record["field_order"] == "amount,volume" and c.record["cum_amount"] == 10000000.0
    assert counter(decode_metrics.LV1_ORDER_CONTRADICTIONS, provider="jvquant") == before + 1
    # another symbol in the same frame stream decides for itself
    [d] = decode(frame(lv1_doc_row("600519", "贵州茅台", "1572.12", "3258900", "5123456789.00")), state)
    assert d.record["field_order"] == "volume,amount"
    # state lives in the object the caller owns, not in the module
    [e] = decode(frame(lv1_doc_row("600000", "浦发银行", "10.00", "10000000", "100500000.00")), DecoderState())
    assert e.record["field_order"] == "volume,amount"


def test_lv1_volume_in_lots_is_recognised() -> None:
    # volume counted in lots of 100 shares: amount / volume ≈ 100 × price
    [q] = decode(frame(lv1_doc_row("600000", "浦发银行", "10.00", "100000", "100500000.00")), DecoderState())
    assert q.record["field_order"] == "volume,amount" and q.record["cum_volume"] == 100000.0


def test_lv2_documented_packet_later_records_id_first() -> None:
    # the jvQuant quote document:
    # "lv2_证券代码1=成交时间1,成交编号1,成交价格1,成交数量1|成交编号2,成交时间2,成交价格2,成交数量2..."
    out = decode(frame("lv2_600519=09:30:00.120,1234567,1572.12,100|1234568,09:30:00.350,1572.10,200"))
    assert [(n.record["trade_id"], n.record["event_time"]) for n in out] == [
        ("1234567", at(9, 30, 0, 120000)), ("1234568", at(9, 30, 0, 350000))]


def test_lv2_trade_number_is_never_read_as_a_time() -> None:
    with pytest.raises(ParseError) as info:
        decode(frame("lv2_600519=1234567,7654321,1572.12,100"))
    assert "time" in str(info.value)
    assert info.value.partial == []


def test_lv2_zero_price_record_is_skipped_and_counted() -> None:
    before = counter(decode_metrics.SKIPPED, provider="jvquant", reason="lv2 zero price")
    out = decode(frame("lv2_000001=09:30:00.120,1,10.52,100|2,09:30:00.130,0.00,300|09:30:00.140,3,10.53,200"))
    assert [n.record["trade_id"] for n in out] == ["1", "3"]
    assert counter(decode_metrics.SKIPPED, provider="jvquant", reason="lv2 zero price") == before + 1


def test_lv2_bad_record_dead_letters_only_itself() -> None:
    with pytest.raises(ParseError) as info:
        decode(frame("lv2_000001=09:30:00.120,1,10.52,100|09:30:00.130,2,abc,300|3,09:30:00.140,10.53,200"))
    err = info.value
    assert [n.record["trade_id"] for n in err.partial] == ["1", "3"]
    [rej] = err.rejects
    assert "record 1" in rej.reason and "abc" in rej.reason and rej.symbol == "000001.SZ"
    assert rej.position == "lv2_000001=09:30:00.120,1,10.52,100|09:30:00.130,2,abc".index("09:30:00.130,2")
    assert rej.raw == b"lv2_000001=09:30:00.130,2,abc,300"
    # the dead letter carries that one record, replayable as a frame of its own
    from marketpipe.processors.deadletter import dead_letters
    [dl] = dead_letters(frame("x"), err, 0)
    assert dl["raw"] == rej.raw and dl["reason"] == rej.reason and dl["symbol"] == "000001.SZ"
    with pytest.raises(ParseError, match="abc"):
        decode(frame(dl["raw"], opcode="text"))


# ---- plausibility (issue 11 item 7) ------------------------------------------------------------

def reason_of(value: bytes | str, opcode: str = "binary") -> str:
    with pytest.raises(ParseError) as info:
        decode(frame(value, opcode=opcode))
    return str(info.value)


def test_plausibility_lv1_field_count() -> None:
    row = "lv1_600519=10:15:03," + ",".join(["x"] * 10_000) + "," + LV1.split(",", 4)[4]
    assert "lv1 field count" in reason_of(row)


def test_plausibility_name_length() -> None:
    assert "name length" in reason_of(LV1.replace("贵州茅台", "贵" * 200))


def test_plausibility_event_time_window() -> None:
    # HK/US time formats are undocumented, so epoch numbers are accepted: only near the receive time
    assert "event time" in reason_of("lv2_00700=1234,88,380.2,100")


def test_plausibility_records_per_row() -> None:
    row = "lv2_600519=" + "|".join(f"09:30:00.120,{i},1572.12,100" for i in range(4999))
    assert "records per row" in reason_of(row)


def test_invalid_utf8_has_its_own_reason() -> None:
    assert "UTF-8" in reason_of(b"add ok \xff\xfe lv1", opcode="text")
    assert "empty frame" in reason_of(b"", opcode="text")


def test_unknown_text_frame_is_counted_as_control() -> None:
    before = counter(decode_metrics.CONTROL, provider="jvquant", kind="unknown text")
    assert decode(frame(b"something the docs never mention", opcode="text")) == []
    assert counter(decode_metrics.CONTROL, provider="jvquant", kind="unknown text") == before + 1
    before = counter(decode_metrics.CONTROL, provider="jvquant", kind="command reply")
    assert decode(frame(b"add ok: 1 codes: lv1_600519", opcode="text")) == []
    assert counter(decode_metrics.CONTROL, provider="jvquant", kind="command reply") == before + 1


def test_each_bad_row_and_record_is_its_own_dead_letter_in_text_order() -> None:
    from marketpipe.processors.deadletter import dead_letters

    text = "lv2_600000=09:30:00,1,7.5,100|x\nlv9_600000=1\nlv2_600000=09:30:01,3,7.5,100"
    with pytest.raises(ParseError) as info:
        decode(frame(text))
    err = info.value
    assert [n.record["trade_id"] for n in err.partial] == ["1", "3"]
    dls = dead_letters(frame(text), err, 0)
    assert [d["raw"] for d in dls] == [b"lv2_600000=x", b"lv9_600000=1"]
    assert [d["source"]["index"] for d in dls] == [text.index("|x") + 1, text.index("lv9")]
    assert [d["symbol"] for d in dls] == ["600000.SH", "600000.SH"]
    assert "row 0 record 1" in dls[0]["reason"] and "row 1" in dls[1]["reason"]


# ---- clock times dated by the A-share trading calendar (issue 18) ----

#: the day's last snapshot in the jvQuant document's lv1 shape (成交量 then 成交额)
CLOSE_ROW = lv1_doc_row("600519", "贵州茅台", "1572.12", "3258900", "5123456789.00", clock="15:00:03",
                        book="300,1572.10,100,1572.05,200,1572.00,500,1571.99,100,1571.90,"
                             "200,1572.12,100,1572.20,300,1572.50,100,1572.58,400,1572.60")


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)  # type: ignore[misc]


@pytest.mark.parametrize("recv,expected", [
    (cst(2024, 6, 3, 8, 30), cst(2024, 5, 31, 15, 0, 3)),    # Monday before the open: Friday's close
    (cst(2024, 6, 1, 10, 0), cst(2024, 5, 31, 15, 0, 3)),    # Saturday: Friday
    (cst(2024, 6, 2, 23, 0), cst(2024, 5, 31, 15, 0, 3)),    # Sunday night
    (cst(2024, 6, 11, 8, 30), cst(2024, 6, 7, 15, 0, 3)),    # after the Dragon Boat Monday (6/10 closed)
    (cst(2026, 2, 24, 9, 0), cst(2026, 2, 13, 15, 0, 3)),    # first morning after the 2026 Spring Festival
    (cst(2025, 10, 6, 12, 0), cst(2025, 9, 30, 15, 0, 3)),   # a weekday inside the National Day closure
    (cst(2024, 6, 3, 15, 0, 4), cst(2024, 6, 3, 15, 0, 3)),  # the same afternoon: today
    (cst(2024, 6, 3, 20, 0), cst(2024, 6, 3, 15, 0, 3)),     # the evening after the close: today
])
def test_lv1_clock_time_is_dated_by_the_trading_calendar(recv: datetime, expected: datetime) -> None:
    [q] = decode(frame(CLOSE_ROW, recv=recv), DecoderState())
    assert q.record["event_time"] == ms(expected)
    assert q.record["event_time"] <= ms(recv) + 3600 * 1000


def test_lv2_trades_received_before_the_open_belong_to_the_previous_trading_day() -> None:
    out = decode(frame("lv2_600519=14:56:59.120,1234567,1572.12,100|1234568,14:57:00.350,1572.10,200",
                       recv=cst(2024, 6, 3, 8, 0)))
    assert [n.record["event_time"] for n in out] == [ms(cst(2024, 5, 31, 14, 56, 59) + timedelta(milliseconds=120)),
                                                     ms(cst(2024, 5, 31, 14, 57, 0) + timedelta(milliseconds=350))]


def test_a_provider_clock_slightly_ahead_still_dates_today() -> None:
    # the first call-auction snapshot stamped a few minutes ahead of our clock is today's, not Friday's
    [q] = decode(frame(CLOSE_ROW.replace("15:00:03", "09:15:00"), recv=cst(2024, 6, 3, 9, 10)), DecoderState())
    assert q.record["event_time"] == ms(cst(2024, 6, 3, 9, 15))


def test_hk_and_us_clock_times_are_never_more_than_an_hour_ahead() -> None:
    # no holiday table ships for HK/US: every day counts, and the 1 h rule still holds
    rows = "lv2_00700=16:08:00.5,88,380.2,100\nlv2_aapl=21:30:06,RTH,777,190.51,10"
    hk, us = decode(frame(rows, recv=cst(2024, 6, 4, 8, 0)))
    assert hk.record["event_time"] == ms(cst(2024, 6, 3, 16, 8) + timedelta(milliseconds=500))
    assert us.record["event_time"] == ms(cst(2024, 6, 3, 21, 30, 6))


# ---- books decide from the data (issue 18) ----

#: the jvQuant document's level-1 book: 买五档[挂单数量,挂单价格], 卖五档[挂单数量,挂单价格]
BIDS_QP = [("300", "1572.10"), ("100", "1572.05"), ("200", "1572.00"), ("500", "1571.99"), ("100", "1571.90")]
ASKS_QP = [("200", "1572.12"), ("100", "1572.20"), ("300", "1572.50"), ("100", "1572.58"), ("400", "1572.60")]


def book_of(bids: list[tuple[str, str]], asks: list[tuple[str, str]], price_first: bool = False) -> str:
    pairs = [(p, q) if price_first else (q, p) for q, p in bids + asks]
    return ",".join(x for pair in pairs for x in pair)


def reoriented(kind: str) -> float:
    return counter(decode_metrics.BOOK_REORIENTED, provider="jvquant", kind=kind)


def test_lv1_book_with_price_and_size_columns_the_other_way_round_is_read_by_its_prices() -> None:
    documented = lv1_doc_row("600519", "贵州茅台", "1572.12", "3258900", "5123456789.00",
                             book=book_of(BIDS_QP, ASKS_QP))
    swapped = lv1_doc_row("600519", "贵州茅台", "1572.12", "3258900", "5123456789.00",
                          book=book_of(BIDS_QP, ASKS_QP, price_first=True))
    before = reoriented("price/size columns")
    [a] = decode(frame(documented), DecoderState())
    assert reoriented("price/size columns") == before
    [b] = decode(frame(swapped), DecoderState())
    assert reoriented("price/size columns") == before + 1
    assert b.record["bids"] == a.record["bids"] and b.record["asks"] == a.record["asks"]
    assert a.record["bids"][0] == {"price": 1572.10, "size": 300.0}
    assert a.record["asks"][0] == {"price": 1572.12, "size": 200.0}


def test_lv1_book_with_sides_the_other_way_round_is_turned_round() -> None:
    before = reoriented("sides")
    row = lv1_doc_row("600519", "贵州茅台", "1572.12", "3258900", "5123456789.00", book=book_of(ASKS_QP, BIDS_QP))
    [q] = decode(frame(row), DecoderState())
    assert q.record["bids"][0] == {"price": 1572.10, "size": 300.0}
    assert q.record["asks"][0] == {"price": 1572.12, "size": 200.0}
    assert reoriented("sides") == before + 1


def test_lv1_crossed_book_is_dead_lettered_and_the_frame_keeps_its_good_rows() -> None:
    crossed_bids = [("300", "1572.30"), ("100", "1572.00")]
    crossed_asks = [("200", "1572.12"), ("100", "1572.40")]
    bad = lv1_doc_row("600519", "贵州茅台", "1572.12", "3258900", "5123456789.00",
                      book=book_of(crossed_bids + [("0", "0")] * 3, crossed_asks + [("0", "0")] * 3))
    good = lv1_doc_row("600000", "浦发银行", "10.00", "10000000", "100500000.00")
    with pytest.raises(ParseError) as info:
        decode(frame(bad + "\n" + good), DecoderState())
    [rej] = info.value.rejects
    assert "crossed book" in rej.reason and rej.symbol == "600519.SH"
    assert [n.key for n in info.value.partial] == ["600000.SH"]


def test_lv1_locked_book_of_the_call_auction_is_published() -> None:
    # 09:15-09:25 the indicative match shows 买一 = 卖一: locked, not crossed
    row = lv1_doc_row("600519", "贵州茅台", "1572.12", "0", "0", clock="09:20:00",
                      book=book_of([("300", "1572.12")] + [("0", "0")] * 4, [("200", "1572.12")] + [("0", "0")] * 4))
    [q] = decode(frame(row), DecoderState())
    assert q.record["bids"][0]["price"] == q.record["asks"][0]["price"] == 1572.12
