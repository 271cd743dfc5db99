"""Issue 11 (trader): hostile or absurd input never kills a process, caps count per broker
account and survive a restart, account numbers stay inside the process. Pure parts; the
Kafka-driven proof is tests/integration/test_trader_hardening_kafka.py."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

import pytest

from marketpipe.trader import commands, rules, signing
from marketpipe.trader.ledger import Entry

KEY = "k3y"
DAY = 20_000
DAY_MS = DAY * 86_400_000


def test_verify_refuses_a_price_outside_the_schema_instead_of_raising() -> None:
    cmd = commands.place("acc", "600519.SH", "buy", "1500", 100, KEY, command_id="c1")
    for price in (Decimal("1E+30"), Decimal("1E+15"), Decimal("NaN"), Decimal("Infinity")):
        assert signing.verify({**cmd, "price": price}, KEY) is False


@pytest.mark.parametrize("price,volume,message", [
    ("1e30", 100, r"decimal\(18,3\)"),
    ("1e15", 100, r"decimal\(18,3\)"),
    ("nan", 100, "not a finite"),
    ("-Infinity", 100, "not a finite"),
    ("0", 100, "positive"),
    ("1500", 2**63, "volume"),
    ("1500", 0, "volume"),
])
def test_command_builder_rejects_absurd_numbers_with_a_value_error(price: str, volume: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        commands.place("a", "600519.SH", "buy", price, volume, KEY)


@pytest.mark.parametrize("price,volume", [("1e30", "100"), ("1500", str(2**63)), ("nan", "100"), ("1500", "2^63")])
def test_order_place_cli_says_one_line_and_exits_2(price: str, volume: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_"))}
    env.update({"MARKETPIPE_ORDER_SIGNING_KEY": KEY, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
                "MARKETPIPE_METRICS_PORT": "-1"})
    res = subprocess.run([sys.executable, "-m", "marketpipe", "order", "place", "--account", "a", "--symbol",
                          "600519.SH", "--side", "buy", "--price", price, "--volume", volume],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("marketpipe order place: "), res.stderr
    assert res.stdout == ""


@pytest.mark.parametrize("ttl", [float("inf"), float("nan"), 1e308])
def test_command_builders_reject_an_unusable_lifetime(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        commands.place("a", "600519.SH", "buy", "1500", 100, KEY, ttl_s=ttl)
    with pytest.raises(ValueError, match="ttl"):
        commands.cancel("a", "600519.SH", KEY, broker_order_id="1", ttl_s=ttl)


def test_account_tag_is_keyed_stable_and_hides_the_number() -> None:
    tag = signing.account_tag("310000123456", KEY)
    assert tag == signing.account_tag("310000123456", KEY)
    assert "310000123456" not in tag and "123456" not in tag
    assert tag != signing.account_tag("310000123456", "other-key")
    assert tag != signing.account_tag("310000123457", KEY)


def test_accounts_resolve_number_alias_and_public_id_to_one_account() -> None:
    accounts = rules.Accounts.serving("310000123456", "desk-a", KEY)
    assert accounts.public == "desk-a"
    assert {accounts.resolve(n) for n in ("310000123456", "desk-a")} == {"desk-a"}
    assert accounts.resolve("someone-else") is None
    unaliased = rules.Accounts.serving("310000123456", "", KEY)
    assert unaliased.public == signing.account_tag("310000123456", KEY)
    assert unaliased.resolve(unaliased.public) == unaliased.public


def cmd(account: str = "desk-a", price: str = "1500.00", volume: int = 100) -> dict[str, object]:
    return {"symbol": "600519.SH", "side": "BUY", "price": Decimal(price), "volume": volume, "account": account}


REF = rules.Reference(Decimal("1500.00"), "贵州茅台")


def placed(command_id: str, account: str, notional: str, state: str = "SUBMITTED", day: int = DAY) -> Entry:
    return Entry(command_id, account, "PLACE", "600519.SH", state, side="BUY", price="1500.000", volume=100,
                 intent_ms=day * 86_400_000 + 1000, notional=notional)


def test_daily_usage_is_rebuilt_from_the_ledger_whatever_name_the_entries_carry() -> None:
    entries = [
        placed("a", "desk-a", "150000"),
        placed("b", "310000123456", "150000"),  # written before accounts were resolved: same broker account
        placed("c", "anything", "150000", state="INTENT"),  # may be at the broker: counts
        placed("d", "desk-a", "150000", state="DONE"),
        placed("e", "desk-a", "150000", day=DAY - 1),  # yesterday
        Entry("f", "desk-a", "PLACE", "600519.SH", "REJECTED", side="BUY", price="1500.000", volume=100),
        Entry("g", "desk-a", "CANCEL", "600519.SH", "DONE", intent_ms=DAY_MS + 5),
    ]
    counters = rules.Counters()
    counters.rebuild(entries, "desk-a")
    assert counters.daily_notional[("desk-a", DAY)] == Decimal("600000")
    assert counters.daily_orders[("desk-a", DAY)] == 4
    limits = rules.Limits(max_daily_notional=Decimal("700000"))
    check = rules.check_place(cmd(), limits, REF, counters, day=DAY, now=1.0, halted=False)
    assert check is not None and check.rule == "max_daily_notional"
    assert rules.check_place(cmd(), limits, REF, counters, day=DAY + 1, now=1.0, halted=False) is None


def test_daily_order_count_is_capped() -> None:
    counters = rules.Counters()
    for i in range(3):
        counters.record("desk-a", DAY, Decimal("1"), float(i))
    limits = rules.Limits(max_daily_orders=3)
    check = rules.check_place(cmd(), limits, REF, counters, day=DAY, now=100.0, halted=False)
    assert check is not None and check.rule == "max_daily_orders"


def test_rebuild_keeps_the_rate_window() -> None:
    counters = rules.Counters()
    counters.record("desk-a", DAY, Decimal("1"), 99.9)
    counters.rebuild([], "desk-a")
    assert list(counters.recent) == [99.9] and counters.daily_notional == {}


@pytest.mark.parametrize("value,halted,readable", [
    (b'{"halted": true, "reason": "x"}', True, True),
    (b'{"halted": false}', False, True),
    (None, False, True),  # tombstone: the switch was deleted
    (b"{halted: maybe", True, False),
    (b'["halted"]', True, False),
    (b'{"halted": "no"}', True, False),  # not a boolean: never guess "off"
    (b"\xff\xfe", True, False),
])
def test_kill_switch_record_fails_closed(value: bytes | None, halted: bool, readable: bool) -> None:
    state = commands.read_kill_switch(value)
    assert (state.halted, state.readable) == (halted, readable)
    if not readable:
        assert "unreadable" in state.reason


def test_kill_switch_records_round_trip() -> None:
    assert commands.read_kill_switch(commands.kill_switch_value(True, "lunch")).reason == "lunch"
    assert commands.read_kill_switch(commands.kill_switch_value(False, "")).halted is False
