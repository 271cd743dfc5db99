"""Jin10 Engine.IO v3 / Socket.IO packets (protocols.md §3.1)."""

from __future__ import annotations

import pytest

from marketpipe.processors.decode import ParseError, RawFrame, decode
from marketpipe.rawframe import RawMeta
from tests.support.paths import FRAMES

RECV_NS = 1786775228000000000


def frame(value: bytes | str) -> RawFrame:
    data = value.encode() if isinstance(value, str) else value
    return RawFrame("jin10", data, RawMeta("jin10", "c", 1, 1, RECV_NS, "text", "data"), "raw.jin10", 0, 3)


def test_simulator_quote_event() -> None:
    [q] = decode(frame((FRAMES / "jin10_quote.txt").read_bytes()))
    r = q.record
    assert (q.schema, q.topic, q.key, r["venue_symbol"], r["name"]) == ("Quote", "md.quote", "XAUUSD", "XAUUSD", "现货黄金")
    assert (r["last"], r["open"], r["high"], r["low"], r["prev_close"]) == (2345.67, 2340.1, 2350.2, 2330.3, 2339.0)
    assert r["event_time"] == 1786775227483
    assert r["change_pct"] == pytest.approx((2345.67 / 2339.0 - 1) * 100)


@pytest.mark.parametrize("payload,key,last,when", [
    ('{"symbol":"eurusd","price":"1.0855","t":1786775227}', "EURUSD", 1.0855, 1786775227000),
    ('{"s":"SH1A0001","p":3100.5,"time":"1786775227483"}', "000001.SH", 3100.5, 1786775227483),
    ('{"code":"SZ399001","curPrice":9500.1}', "399001.SZ", 9500.1, RECV_NS // 1_000_000),
    ('{"code":"SH000300","last":3500,"time":"2026-08-15 10:00:00"}', "000300.SH", 3500.0, 1786759200000),
])
def test_field_aliases(payload: str, key: str, last: float, when: int) -> None:
    [q] = decode(frame(f'42["quote",{payload}]'))
    assert (q.key, q.record["last"], q.record["event_time"]) == (key, last, when)


def test_namespace_ack_id_and_list_payload() -> None:
    out = decode(frame('42/quotes,17["price",[{"code":"XAGUSD","last":30.1},{"code":"USOIL","last":80.2}]]'))
    assert [n.key for n in out] == ["XAGUSD", "USOIL"]
    assert [n.record["source"]["index"] for n in out] == [0, 1]


@pytest.mark.parametrize("packet", [
    '0{"sid":"C10ZwKOEHslD9QOyAGrS","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":60000}',
    "40", "41", "2", "3", "2probe", "3probe", "5", "6", "ok", "", '43["x"]',
])
def test_control_packets(packet: str) -> None:
    assert decode(frame(packet)) == []


def test_polling_payload_with_several_packets() -> None:
    quote = '42["quote",{"code":"XAUUSD","last":2345.5,"time":1786775227483}]'
    payload = (f"97:0{{\"sid\":\"C10ZwKOEHslD9QOyAGrS\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
               f"\"pingTimeout\":60000}}2:40{len(quote)}:{quote}")
    [q] = decode(frame(payload))
    assert q.key == "XAUUSD" and q.record["last"] == 2345.5


def test_polling_length_counts_characters_not_bytes() -> None:
    quote = '42["quote",{"code":"XAUUSD","name":"现货黄金","last":1}]'
    [q] = decode(frame(f"{len(quote)}:{quote}"))
    assert q.record["name"] == "现货黄金"


@pytest.mark.parametrize("packet", [
    '42["quote",{"last":1}]', '42["quote",{"code":"X"}]', '42["quote"]', "42{bad", "7", "45-binary",
    "10:42[]", b"\xff", '42["quote",{"code":"X","last":"abc"}]',
])
def test_unreadable_packets_raise_parse_error(packet: str | bytes) -> None:
    with pytest.raises(ParseError, match="jin10"):
        decode(frame(packet))


def unknown_count(event: str) -> float:
    from marketpipe.processors import metrics

    return metrics.JIN10_UNKNOWN_EVENTS.labels(event)._value.get()


def test_unknown_push_events_are_counted_by_name_and_not_dead_lettered(caplog: pytest.LogCaptureFixture) -> None:
    """Jin10's real push events are undocumented: they are counted and kept, never garbage."""
    before = unknown_count("priceUpdate"), unknown_count("news")
    caplog.set_level("WARNING", logger="marketpipe.providers.jin10.decode")
    assert decode(frame('42["priceUpdate",{"c":"XAUUSD","p":"2400.1"}]')) == []
    assert decode(frame('42["priceUpdate",{"c":"EURUSD","p":"1.08"}]')) == []
    assert decode(frame('42["news",{"title":"x"}]')) == []
    payload = '27:42["priceUpdate",{"c":"A"}]'
    assert decode(frame(payload)) == []
    assert unknown_count("priceUpdate") - before[0] == 3
    assert unknown_count("news") - before[1] == 1
    lines = [r.getMessage() for r in caplog.records if "not understood" in r.getMessage()]
    assert sum("priceUpdate" in line for line in lines) <= 1 and sum("news" in line for line in lines) <= 1


def test_known_quote_and_unknown_event_in_one_polling_body() -> None:
    quote = '42["quote",{"code":"XAUUSD","last":2400.5,"time":1786775227000}]'
    other = '42["tick",{"x":1}]'
    [q] = decode(frame(f"{len(quote)}:{quote}{len(other)}:{other}"))
    assert (q.key, q.record["last"]) == ("XAUUSD", 2400.5)


def test_polling_payload_with_a_character_outside_the_bmp_decodes() -> None:
    # EIO v3 servers are JavaScript: the length counts UTF-16 code units, so 🚀 counts 2
    packet = '42["quote",{"code":"XAUUSD","name":"现货黄金🚀","price":2345.67,"t":1786775227}]'
    [q] = decode(frame(f"{len(packet) + 1}:{packet}"))
    assert (q.key, q.record["name"], q.record["last"]) == ("XAUUSD", "现货黄金🚀", 2345.67)
