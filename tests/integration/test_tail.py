"""`marketpipe tail` decodes both framings, filters by symbol and shows raw frames."""

from __future__ import annotations

import json
import subprocess
import sys

from confluent_kafka import Producer

from marketpipe.rawframe import RawMeta
from marketpipe.schemas.codec import Codec


def tick(symbol: str, price: float, offset: int) -> dict:
    return {"provider": "infoway", "symbol": symbol, "venue_symbol": symbol, "event_time": 1786775227483,
            "receive_time_ns": 1786775227483000000, "price": price, "size": 0.5, "amount": None, "side": "BUY",
            "trade_id": None, "session": None, "parser_version": "t",
            "source": {"topic": "raw.infoway", "partition": 0, "offset": offset, "index": 0}}


def test_tail_prints_json_and_filters(mp_settings, mp_env) -> None:
    s = mp_settings
    producer = Producer(s.kafka.client_config())
    enc = Codec().encoder("Tick")
    producer.produce(s.topic("md.tick"), key=b"BTCUSDT", value=enc(tick("BTCUSDT", 63039.5, 1)))
    producer.produce(s.topic("md.tick"), key=b"ETHUSDT", value=enc(tick("ETHUSDT", 3100.25, 2)))
    producer.produce(s.topic("md.tick"), key=b"BTCUSDT", value=b"not avro")
    meta = RawMeta("jvquant", "c1", 7, 1, 123, "binary", "data")
    producer.produce(s.topic("raw.jvquant"), key=b"c1", value=b"\x01\x02\xff", headers=meta.headers())
    assert producer.flush(30) == 0

    env = mp_env
    out = subprocess.run([sys.executable, "-m", "marketpipe", "tail", "md.tick", "--from-beginning", "--json",
                          "--symbol", "ETHUSDT", "--limit", "1"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 1
    assert rows[0]["schema"] == "Tick" and rows[0]["record"]["symbol"] == "ETHUSDT"
    assert rows[0]["record"]["price"] == 3100.25

    out = subprocess.run([sys.executable, "-m", "marketpipe", "tail", "md.tick", "--from-beginning",
                          "--idle-exit", "3"], env=env, capture_output=True, text=True, timeout=60)
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    assert any("BTCUSDT" in line and "price=63039.5" in line for line in lines)
    assert any("undecodable: unknown framing" in line for line in lines)

    out = subprocess.run([sys.executable, "-m", "marketpipe", "tail", "raw.jvquant", "--from-beginning",
                          "--limit", "1"], env=env, capture_output=True, text=True, timeout=60)
    assert "jvquant seq=7 data/binary 3B 0102ff" in out.stdout


def test_tail_of_a_missing_topic_says_so(mp_env) -> None:
    out = subprocess.run([sys.executable, "-m", "marketpipe", "tail", "no.such.topic", "--limit", "1"],
                         env=mp_env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "does not exist" in out.stderr


def test_tail_reads_the_trader_s_ledger_and_positions_of_every_encoding(mp_settings, mp_env) -> None:
    from marketpipe.kafka import topics
    from marketpipe.trader.ledger import Entry, Ledger
    from marketpipe.trader.ledger_codec import position_record

    s = mp_settings
    producer = Producer(s.kafka.client_config())
    ledger_topic = s.topic(topics.ORDER_LEDGER)
    old = Entry("c-old", "acct-alias", "PLACE", "600519.SH", "DONE", side="BUY", price="1500.00", volume=100)
    # a value written before the ledger was Avro: compaction keeps it for good
    producer.produce(ledger_topic, key=b"c-old", value=old.to_bytes())
    new = Entry("c-new", "acct-alias", "PLACE", "000001.SZ", "INTENT", side="BUY", price="11.00", volume=200,
                extra={"note": "kept"})
    Ledger(producer, ledger_topic).put(new)
    positions = s.topic(topics.ORDER_POSITIONS)
    producer.produce(positions, key=b"acct-alias:600519", value=Codec().encode(
        "Position", position_record("acct-alias", {"code": "600519", "name": "贵州茅台", "hold_vol": "100",
                                                   "usable_vol": 0}, 1786775227483)))
    assert producer.flush(30) == 0

    def tail(topic: str, n: int) -> list[dict]:
        out = subprocess.run([sys.executable, "-m", "marketpipe", "tail", topic, "--from-beginning", "--limit", str(n),
                              "--json", "--idle-exit", "10"], env=mp_env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]

    ledger = {line["key"]: line for line in tail("order.ledger", 2)}
    assert ledger["c-new"]["schema"] == "LedgerEntry" and ledger["c-new"]["record"]["state"] == "INTENT"
    assert ledger["c-old"]["schema"] == "json" and ledger["c-old"]["record"]["state"] == "DONE"
    [position] = tail("order.positions", 1)
    assert position["schema"] == "Position"
    assert (position["record"]["code"], position["record"]["hold_vol"], position["record"]["usable_vol"]) == \
        ("600519", "100", 0)

    # and the trader reads its ledger back, both encodings, nothing lost
    reread = Ledger(producer, ledger_topic, group_id=f"{s.topic_prefix}reader")
    assert reread.load(s.kafka.client_config()) == 2
    assert reread.get("c-old") == old and reread.get("c-new") == new
