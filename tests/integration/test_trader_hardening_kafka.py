"""Issue 11 done-when: the trader survives hostile input on a real broker and keeps its caps.

In order, on one trader: a decodable command with a price of 1E+30 and a record that is not
Avro at all, then good commands (they flow); an unreadable kill-switch record (trading halts,
fail closed) and ``marketpipe order resume`` (they flow again); orders under several account
names, a restart, and the daily notional cap still holds. Account numbers never appear in
order.positions, order.events or the trader's log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from marketpipe import settings as settings_mod
from marketpipe.kafka import topics
from marketpipe.providers.jvquant.trade_simulator import TradeCounter
from marketpipe.schemas.codec import Codec
from marketpipe.simulators.runner import run as run_sim
from marketpipe.trader import commands, signing
from tests.support.trader_stack import Events, start_trader, trader_env, wait_log, with_topics

KEY = "hardening-key"
ACCOUNT = "310000123456"  # the broker account number: a secret
ALIAS = "desk-a"
ORDER_NOTIONAL = Decimal("150000")  # 600519.SH 1500.00 x 100
CAP = 4 * ORDER_NOTIONAL


@pytest.fixture
def stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    counter = TradeCounter(fill_seconds=0.5)
    with run_sim("jvquant", rate=1, extra_routes=counter.add_routes) as sim:
        env = trader_env(kafka_bootstrap, tmp_path, sim.base_url, account=ACCOUNT, key=KEY,
                         MARKETPIPE_TRADER_MAX_DAILY_NOTIONAL=str(CAP), MARKETPIPE_TRADER_ACCOUNT_ALIAS=ALIAS)
        s = with_topics(env)
        yield {"env": env, "settings": s, "counter": counter, "tmp": tmp_path}


def produce_raw(s: settings_mod.Settings, topic: str, key: bytes, value: bytes) -> tuple[int, int]:
    """Write one record as-is; returns its (partition, offset)."""
    got: dict[str, Any] = {}
    producer = Producer({**s.kafka.client_config(), "acks": "all"})
    producer.produce(s.topic(topic), key=key, value=value,
                     on_delivery=lambda err, msg: got.update(err=err, where=(msg.partition(), msg.offset())))
    assert producer.flush(30) == 0 and got["err"] is None
    return got["where"]


def order(account: str) -> dict[str, Any]:
    return commands.place(account, "600519.SH", "buy", "1500.00", 100, KEY, ttl_s=120)


def send(s: settings_mod.Settings, cmd: dict[str, Any]) -> str:
    commands.send(s, cmd)
    return cmd["command_id"]


def final_state(ev: Events, command_id: str) -> str:
    ev.wait(lambda: any(st in ("SUBMITTED", "REJECTED", "FAILED") for st in ev.states(command_id)))
    return next(st for st in ev.states(command_id) if st in ("SUBMITTED", "REJECTED", "FAILED"))


def read_all(s: settings_mod.Settings, topic: str) -> list[tuple[bytes, bytes]]:
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    name = s.topic(topic)
    parts = consumer.list_topics(name, timeout=10).topics[name].partitions
    consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in parts])
    out, eof = [], set()
    while len(eof) < len(parts):
        msg = consumer.poll(5)
        assert msg is not None, f"{name} not read to its end"
        if msg.error():
            eof.add(msg.partition())
        else:
            out.append((msg.key() or b"", msg.value() or b""))
    consumer.close()
    return out


def test_poison_records_control_garbage_and_caps_across_restart(stack: dict[str, Any]) -> None:
    s, counter, log = stack["settings"], stack["counter"], stack["tmp"] / "marketpipe.trader.log"
    ev = Events(s)
    proc = start_trader(stack["env"], log)
    try:
        # 1. poison: a decodable command priced 1E+30 (unsigned: nobody needs the key), and bytes that are no Avro
        poison = {**order(ACCOUNT), "price": Decimal("1E+30"), "signature": ""}
        send(s, poison)
        part, offset = produce_raw(s, topics.ORDER_COMMANDS, b"x", b"\xc3\x01not an order command")
        garbage_id = f"{s.topic(topics.ORDER_COMMANDS)}/{part}/{offset}"
        good1 = send(s, order(ACCOUNT))
        assert final_state(ev, good1) == "SUBMITTED", log.read_text()[-3000:]
        ev.wait(lambda: "REJECTED" in ev.states(poison["command_id"]) and "REJECTED" in ev.states(garbage_id))
        assert ev.of(poison["command_id"])[-1]["rule"] == "price"
        assert ev.of(garbage_id)[-1]["rule"] == "undecodable" and ev.of(garbage_id)[-1]["event_id"] == garbage_id
        assert proc.poll() is None

        # 2. an unreadable kill-switch record halts trading (fail closed) until a newer valid one
        produce_raw(s, topics.ORDER_CONTROL, b"kill_switch", b"{halted: maybe")
        wait_log(log, "failing closed: unreadable kill-switch record", 1)
        halted = send(s, order(ALIAS))
        assert final_state(ev, halted) == "REJECTED"
        assert ev.of(halted)[-1]["rule"] == "kill_switch" and "unreadable" in ev.of(halted)[-1]["reason"]
        resume = subprocess.run([sys.executable, "-m", "marketpipe", "order", "resume", "--reason", "test"],
                                env=stack["env"], capture_output=True, text=True, timeout=60)
        assert resume.returncode == 0, resume.stderr
        wait_log(log, "kill switch off (test)", 1)
        good2 = send(s, order(ALIAS))
        assert final_state(ev, good2) == "SUBMITTED", log.read_text()[-3000:]

        # 3. caps count per broker account, whatever name the command uses
        good3 = send(s, order(ALIAS))
        assert final_state(ev, good3) == "SUBMITTED"
        stranger = send(s, order("some-other-account"))
        assert final_state(ev, stranger) == "REJECTED" and ev.of(stranger)[-1]["rule"] == "account"
        tag = signing.account_tag("some-other-account", KEY)  # a name we do not serve may be someone's number
        assert ev.of(stranger)[-1]["account"] == tag and tag in ev.of(stranger)[-1]["reason"]
        assert ev.of(poison["command_id"])[-1]["account"] == ALIAS
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, log.read_text()[-3000:]

    placed_before_restart = counter.placed
    proc = start_trader(stack["env"], log)
    try:
        good4 = send(s, order(ACCOUNT))  # 4 x 150 000 = the 600 000 cap exactly
        assert final_state(ev, good4) == "SUBMITTED", log.read_text()[-3000:]
        over = [send(s, order(name)) for name in (ACCOUNT, ALIAS)]
        for command_id in over:
            assert final_state(ev, command_id) == "REJECTED"
            assert ev.of(command_id)[-1]["rule"] == "max_daily_notional"
        ev.wait(lambda: "FILLED" in ev.states(good4))
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    assert placed_before_restart == 3
    assert counter.placed == 4 and counter.placed * ORDER_NOTIONAL == CAP
    print(f"orders placed {counter.placed} x {ORDER_NOTIONAL} = {counter.placed * ORDER_NOTIONAL} "
          f"under a cap of {CAP}; {len(over)} more rejected after the restart")

    # 4. the account number never leaves the process in clear
    positions = read_all(s, topics.ORDER_POSITIONS)
    assert positions, "no position snapshot published"
    assert not any(ACCOUNT.encode() in k + v for k, v in positions)
    assert any(ALIAS.encode() in k for k, _ in positions)
    assert {e["account"] for e in ev.seen if e["command_id"] in (good1, good2, good4)} == {ALIAS}
    assert not any(ACCOUNT in json.dumps(e, default=str) for e in ev.seen)
    assert ACCOUNT not in log.read_text()
    ev.close()


class ExplodingBroker:
    """Stands in for the HTTP trade API: its answer to /buy cannot be parsed."""

    account = ACCOUNT

    def __init__(self) -> None:
        self.calls = 0

    def place(self, *args: Any) -> str:
        self.calls += 1
        raise ValueError("malformed answer from /buy")

    def orders(self) -> list[Any]:
        return []

    def positions(self) -> dict[str, Any]:
        return {"hold_list": []}


def test_an_exception_while_handling_one_command_is_reported_not_fatal(mp_env: dict[str, str],
                                                                        mp_settings: settings_mod.Settings,
                                                                        tmp_path: Path) -> None:
    from marketpipe.trader import consumer, rules

    s = settings_mod.load({**mp_env, "MARKETPIPE_ORDER_SIGNING_KEY": KEY, "JVQUANT_TRADE_ACCOUNT": ACCOUNT})
    broker = ExplodingBroker()
    # a reference file with a bad previous close: the band check raises decimal.InvalidOperation
    bad_ref = tmp_path / "ref.json"
    bad_ref.write_text(json.dumps({"600519.SH": {"prev_close": "1500.00", "name": "贵州茅台"},
                                   "000001.SZ": {"prev_close": "NaN"}}))
    trader = consumer.Trader(s, broker, consumer.load_reference(str(bad_ref)), consumer.limits_from(s))  # type: ignore[arg-type]
    trader.recover(s.kafka.client_config())
    codec = Codec()
    topic = s.topic(topics.ORDER_COMMANDS)

    def handle(cmd: dict[str, Any], offset: int) -> consumer.Outcome:
        return trader.handle(codec.encode("OrderCommand", cmd), 0, consumer.RecordRef(topic, 0, offset))

    nan_band = commands.place(ACCOUNT, "000001.SZ", "buy", "11.00", 100, KEY)
    broker_garbage = order(ACCOUNT)
    assert handle(nan_band, 1).commit and handle(broker_garbage, 2).commit
    assert broker.calls == 1
    ev = Events(s)
    ev.wait(lambda: "REJECTED" in ev.states(nan_band["command_id"]) and "UNKNOWN" in ev.states(broker_garbage["command_id"]))
    rejected = ev.of(nan_band["command_id"])[-1]
    assert rejected["rule"] == "unhandled" and "InvalidOperation" in rejected["reason"]
    unknown = ev.of(broker_garbage["command_id"])[-1]
    assert unknown["rule"] == "unhandled" and "malformed answer" in unknown["reason"]
    assert {e["account"] for e in ev.seen} == {rules.Accounts.serving(ACCOUNT, "", KEY).public}
    # the rejected one is final in the ledger (a redelivery is not handled again); the other stays
    # INTENT, so the next start reconciles it with the broker's order list instead of forgetting it
    assert trader.ledger.get(nan_band["command_id"]).state == "REJECTED"  # type: ignore[union-attr]
    assert trader.ledger.get(broker_garbage["command_id"]).state == "INTENT"  # type: ignore[union-attr]
    assert handle(nan_band, 1).commit and len(ev.of(nan_band["command_id"])) == 1
    assert trader.poison.count == 2
    ev.close()
