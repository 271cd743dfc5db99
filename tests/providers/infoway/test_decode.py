"""Infoway frames: the verbatim production captures of protocols.md §2.2-2.5."""

from __future__ import annotations

import pytest

from marketpipe.processors.decode import ParseError, RawFrame, decode
from marketpipe.rawframe import RawMeta
from tests.support.paths import FRAMES

RECV_NS = 1786775236000000000


def frame(value: bytes | str) -> RawFrame:
    data = value.encode() if isinstance(value, str) else value
    return RawFrame("infoway", data, RawMeta("infoway", "c", 1, 1, RECV_NS, "text", "data"), "raw.infoway", 1, 9)


def fixture(name: str) -> RawFrame:
    return frame((FRAMES / name).read_bytes())


def test_trade_capture() -> None:
    [t] = decode(fixture("infoway_trade.json"))
    assert (t.schema, t.topic, t.key) == ("Tick", "md.tick", "BTCUSDT")
    r = t.record
    assert (r["event_time"], r["price"], r["size"], r["amount"], r["side"]) == (
        1786775227483, 63039.0, 0.07933, 5000.88387, "BUY")
    assert r["receive_time_ns"] == RECV_NS and r["source"] == {"topic": "raw.infoway", "partition": 1, "offset": 9, "index": 0}


@pytest.mark.parametrize("td,side", [(0, "UNKNOWN"), (2, "SELL"), (None, "UNKNOWN"), (7, "UNKNOWN")])
def test_trade_direction(td: int | None, side: str) -> None:
    extra = "" if td is None else f',"td":{td}'
    [t] = decode(frame('{"code":10002,"data":{"p":"1.5","s":"600519.sh","t":1786775227483,"v":"100"' + extra + "}}"))
    assert t.record["side"] == side and t.key == "600519.SH" and t.record["venue_symbol"] == "600519.sh"
    assert t.record["amount"] is None


def test_depth_capture_is_column_major() -> None:
    [d] = decode(fixture("infoway_depth.json"))
    assert (d.schema, d.topic, d.key, d.record["event_time"]) == ("Depth", "md.depth", "BTCUSDT", 1786775235640)
    assert d.record["asks"][:2] == [{"price": 63039.0, "size": 45.06645}, {"price": 63039.01, "size": 0.00151}]
    assert d.record["bids"][0] == {"price": 63038.99, "size": 2.12269}
    assert len(d.record["bids"]) == len(d.record["asks"]) == 5


def test_kline_capture_seconds_string_and_type() -> None:
    [k] = decode(fixture("infoway_kline.json"))
    r = k.record
    assert (k.schema, k.topic, r["event_time"], r["interval"]) == ("Kline", "md.kline", 1786775220000, "1m")
    assert (r["open"], r["high"], r["low"], r["close"], r["volume"], r["amount"]) == (
        63048.0, 63048.0, 63038.99, 63039.0, 19.90087, 1254633.2367064)


@pytest.mark.parametrize("ty,interval", [(2, "5m"), (8, "1d"), (10, "1M"), (11, "1Q"), (12, "1y"), ("5", "1h")])
def test_kline_types(ty: object, interval: str) -> None:
    ty_json = f'"{ty}"' if isinstance(ty, str) else ty
    [k] = decode(frame('{"code":10008,"data":{"c":"1","h":"1","l":"1","o":"1","s":"AAPL.US","t":"1786775220","ty":'
                       f"{ty_json}" ',"v":"1"}}'))
    assert k.record["interval"] == interval and k.key == "AAPL.US"


@pytest.mark.parametrize("name", ["infoway_ack.json", "infoway_welcome.json", "infoway_greeting.txt",
                                  "infoway_error_507.json"])
def test_control_frames_are_not_market_data(name: str) -> None:
    assert decode(fixture(name)) == []


@pytest.mark.parametrize("text", [
    '{"code":10001,"trace":"t","msg":"ok"}', '{"code":10007,"trace":"t","msg":"ok"}',
    '{"code":10011,"trace":"t","msg":"ok"}', '{"code":11010,"trace":"t","msg":"ok"}',
    'Subscribe fail: {"traceId":"t1","code":505,"msg":"Single WS subscribe exceeds the limit 600"}',
    "Subscribe fail: no permission for this market",
    '{"traceId":"t2","code":501,"msg":"Request frequency exceed the limit：60 times per minute"}',
])
def test_acks_rejections_and_errors_are_control(text: str) -> None:
    assert decode(frame(text)) == []


@pytest.mark.parametrize("text", [
    "hello", "", b"\xff\xfe", "{not json", "[1,2]", '{"code":99999,"data":{}}',
    '{"code":10002,"data":{"s":"BTCUSDT","t":1,"v":"1"}}',  # price missing
    '{"code":10002,"data":{"p":"x","s":"BTCUSDT","t":1,"v":"1"}}',
    '{"code":10005,"data":{"a":[["1","2"],["1"]],"s":"BTCUSDT","t":1}}',  # ragged
    '{"code":10008,"data":{"c":"1","h":"1","l":"1","o":"1","s":"X","t":"1","ty":13,"v":"1"}}',
])
def test_malformed_frames_raise_parse_error(text: str | bytes) -> None:
    with pytest.raises(ParseError, match="infoway"):
        decode(frame(text))


def test_batched_data_list() -> None:
    out = decode(frame('{"code":10002,"data":[{"p":"1","s":"A.US","t":1786775227483,"v":"1"},'
                       '{"p":"2","s":"B.US","t":1786775227484,"v":"2"}]}'))
    assert [(n.key, n.record["source"]["index"]) for n in out] == [("A.US", 0), ("B.US", 1)]


# ---- documented shapes (the Infoway websocket document and A-share guide; protocols.md §0) ----

from marketpipe.processors.decode import DecoderState  # noqa: E402
from marketpipe.rawframe import H_KLINE_TYPES  # noqa: E402

#: the Infoway document's "實時K線解析", without the // annotations
RESP_LIST = ('{"s": "002594.SZ", "respList": [{"t": "1751958000", "h": "326.880", "o": "326.880", "l": "326.880",'
             ' "c": "326.880", "v": "1410", "vw": "460900.80", "pc": "0.00%", "pca": "0.000"}]}')


def framed(value: str, kline_types: str | None = None, recv_ns: int = 1751958030 * 10**9) -> RawFrame:
    headers = {} if kline_types is None else {H_KLINE_TYPES: kline_types}
    return RawFrame("infoway", value.encode(), RawMeta("infoway", "c", 1, 1, recv_ns, "text", "data"),
                    "raw.infoway", 1, 9, headers=headers)


def test_kline_resplist_interval_from_subscribed_type() -> None:
    for text in (RESP_LIST, '{"code":10008,"data":' + RESP_LIST + "}"):
        [k] = decode(framed(text, kline_types="1"), DecoderState())
        r = k.record
        assert (k.schema, k.key, r["interval"], r["event_time"]) == ("Kline", "002594.SZ", "1m", 1751958000000)
        assert (r["open"], r["high"], r["low"], r["close"], r["volume"], r["amount"]) == (
            326.88, 326.88, 326.88, 326.88, 1410.0, 460900.8)


@pytest.mark.parametrize("types", [None, "", "1,2"])
def test_kline_resplist_without_one_known_type_is_dead_lettered(types: str | None) -> None:
    with pytest.raises(ParseError, match="kline interval unknown"):
        decode(framed('{"code":10008,"data":' + RESP_LIST + "}", kline_types=types))


def test_kline_flat_ty_wins_over_subscribed_types() -> None:
    [k] = decode(framed('{"code":10008,"data":{"c":"1","h":"1","l":"1","o":"1","s":"BTCUSDT","t":"1751958000",'
                        '"ty":2,"v":"1","vw":"1"}}', kline_types="1"))
    assert k.record["interval"] == "5m"


def test_depth_a_is_asks_b_is_bids_as_the_seed_prices_show() -> None:
    text = ('{"s":"002594.SZ","t":1751958003335,"a":[["326.89","326.90","326.91","326.92","326.93"],'
            '["8","30","10","1","22"]],"b":[["326.88","326.87","326.86","326.85","326.84"],'
            '["1452","77","188","37","21"]]}')
    [d] = decode(framed(text))
    assert d.record["asks"][0] == {"price": 326.89, "size": 8.0}
    assert d.record["bids"][0] == {"price": 326.88, "size": 1452.0}
    assert d.record["bids"][0]["price"] < d.record["asks"][0]["price"]


@pytest.mark.parametrize("value", [b"You have \xff\xfe", b'{"code":10002,"data":{"s":"\xff"}}'])
def test_invalid_utf8_has_its_own_reason(value: bytes) -> None:
    with pytest.raises(ParseError, match="not valid UTF-8"):
        decode(frame(value))


# ---- books decide from the data (issue 18) ----

from marketpipe.processors.decode import metrics as decode_metrics  # noqa: E402

#: seed 002's 五檔深度 prices and quantities; SIDE_* put them under one key or the other
ASK_SIDE = '[["326.89","326.90","326.91","326.92","326.93"],["8","30","10","1","22"]]'
BID_SIDE = '[["326.88","326.87","326.86","326.85","326.84"],["1452","77","188","37","21"]]'


def reoriented(kind: str) -> float:
    return float(decode_metrics.BOOK_REORIENTED.labels("infoway", kind)._value.get())


def test_depth_with_a_holding_the_bids_as_the_seed_comments_say_is_turned_round_and_counted() -> None:
    # seed 002 comments call `a` 買盤 (bids) and `b` 賣盤 (asks): a server that meant it so sends the
    # lower prices under `a`. The prices decide: best bid below best ask.
    before = reoriented("sides")
    [d] = decode(framed('{"code":10005,"data":{"s":"002594.SZ","t":1751958003335,"a":' + BID_SIDE
                        + ',"b":' + ASK_SIDE + "}}"))
    assert d.record["bids"][0] == {"price": 326.88, "size": 1452.0}
    assert d.record["asks"][0] == {"price": 326.89, "size": 8.0}
    assert [lv["price"] for lv in d.record["bids"]] == [326.88, 326.87, 326.86, 326.85, 326.84]
    assert reoriented("sides") == before + 1


def test_depth_in_the_seed_orientation_is_not_counted() -> None:
    before = reoriented("sides")
    [d] = decode(framed('{"s":"002594.SZ","t":1751958003335,"a":' + ASK_SIDE + ',"b":' + BID_SIDE + "}"))
    assert d.record["bids"][0]["price"] == 326.88 and reoriented("sides") == before


def test_depth_crossed_either_way_is_dead_lettered() -> None:
    crossed = ('{"code":10005,"data":{"s":"002594.SZ","t":1751958003335,'
               '"a":[["326.85","326.95"],["8","30"]],"b":[["326.90","326.80"],["1452","77"]]}}')
    with pytest.raises(ParseError, match="crossed book"):
        decode(framed(crossed))
