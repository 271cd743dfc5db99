"""Issue 22: a halt cannot be lifted without the key. The trader's on_control on records as
``marketpipe order halt/resume`` write them (and as anyone else with write access could)."""

from __future__ import annotations

import json
import time

from marketpipe.trader import commands, controls
from tests.support.scripted_trader import KEY, ScriptedCounter, make_trader

KS = commands.KILL_SWITCH_KEY


def halted_trader():  # type: ignore[no-untyped-def]
    trader, _ = make_trader(ScriptedCounter())
    now = int(time.time() * 1000)
    trader.on_control(KS, commands.kill_switch_value(True, "risk officer"), None, now - 1000)
    assert trader.switch.halted
    return trader, now


def refused(reason: str) -> float:
    return controls.REFUSED.labels(reason)._value.get()


def test_an_unsigned_resume_leaves_a_halted_trader_halted() -> None:
    trader, now = halted_trader()
    before = refused("unsigned")
    trader.on_control(KS, json.dumps({"halted": False}).encode(), None, now)
    trader.on_control(KS, commands.kill_switch_value(False, "no key"), None, now)
    assert trader.switch.halted and trader.switch.reason == "risk officer"
    assert refused("unsigned") == before + 2


def test_a_tombstone_leaves_a_halted_trader_halted() -> None:
    trader, now = halted_trader()
    before = refused("tombstone")
    trader.on_control(KS, None, None, now)
    assert trader.switch.halted and refused("tombstone") == before + 1


def test_a_signed_resume_lifts_the_halt() -> None:
    trader, now = halted_trader()
    trader.on_control(KS, commands.kill_switch_value(False, "all clear", KEY, now_ms=now), None, now + 50)
    assert not trader.switch.halted


def test_a_resume_signed_with_another_key_or_tampered_is_refused() -> None:
    trader, now = halted_trader()
    before = refused("bad_signature")
    trader.on_control(KS, commands.kill_switch_value(False, "", "not-the-key", now_ms=now), None, now)
    tampered = json.loads(commands.kill_switch_value(False, "ok", KEY, now_ms=now))
    tampered["reason"] = "something else"
    trader.on_control(KS, json.dumps(tampered).encode(), None, now)
    assert trader.switch.halted and refused("bad_signature") == before + 2


def test_an_old_resume_written_again_is_stale_or_replayed() -> None:
    trader, now = halted_trader()
    old = commands.kill_switch_value(False, "yesterday", KEY, now_ms=now - 86_400_000)
    stale, replayed = refused("stale"), refused("replayed")
    trader.on_control(KS, old, None, now)  # written now, signed yesterday
    assert trader.switch.halted and refused("stale") == stale + 1
    # the same old record with its old timestamp (a CreateTime forged to match): older than the halt
    trader.on_control(KS, old, None, now - 86_400_000)
    assert trader.switch.halted and refused("replayed") == replayed + 1


def test_halting_needs_no_key_and_a_resume_not_after_the_last_halt_is_refused() -> None:
    trader, now = halted_trader()
    resume = commands.kill_switch_value(False, "", KEY, now_ms=now)
    trader.on_control(KS, resume, None, now)
    assert not trader.switch.halted
    trader.on_control(KS, commands.kill_switch_value(True, "again"), None, now + 10_000)
    trader.on_control(KS, resume, None, now)  # the earlier resume copied after the new halt
    assert trader.switch.halted
