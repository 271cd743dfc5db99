"""order.control: the kill switch and operators' resolutions of unresolved commands.

The kill switch (key ``kill_switch``; order.control is compacted and replayed from its start)
fails closed: an unreadable record halts trading until a newer valid record arrives
(``marketpipe order resume``). Halting needs no key; lifting a halt needs a signed, fresh, new
record (:mod:`marketpipe.trader.controls`), else the trader stays halted.

A resolution (key ``resolve:<command id>``, ``marketpipe order resolve``) is an operator's signed
verdict on a command left unresolved (INTENT): its order was placed (with its broker order id) or
was not. Only an INTENT is resolved; the verdict is an event and a final ledger entry.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from marketpipe.trader import commands, controls, metrics
from marketpipe.trader.events import EventWriter
from marketpipe.trader.ledger import PARKED, Ledger
from marketpipe.trader.order_command import RecordRef

log = logging.getLogger(__name__)

KILL_SWITCH_KEY = commands.KILL_SWITCH_KEY
#: order.control keys of operator resolutions: ``resolve:<command id>``
RESOLVE_PREFIX = b"resolve:"


class KillSwitch:
    """Whether new orders are halted, and why."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.halted = False
        self.reason = ""
        self.at_ms = 0  # newest order.control record applied (a resume must be newer)
        #: reads order.control now (the loop sets it): the kill switch is honoured while a command settles
        self.refresh: Callable[[], None] = lambda: None

    def halted_now(self) -> bool:
        self.refresh()
        return self.halted

    def apply(self, value: bytes | None, source: RecordRef | None, timestamp_ms: int | None) -> None:
        """One kill-switch record."""
        state = commands.read_kill_switch(value)
        if self.halted and not state.halted:
            refusal = controls.check_signed(controls.KIND_KILL_SWITCH, state.record, self.key,
                                            last_at_ms=self.at_ms, record_ts_ms=timestamp_ms,
                                            now_ms=int(time.time() * 1000))
            if refusal is not None:
                controls.REFUSED.labels(refusal.reason).inc()
                log.error("kill switch stays ON: resume record %s refused: %s", source or "?", refusal.detail)
                return
        # the time a later resume must be newer than: the broker's stamp where there is one (a halt is
        # unsigned, so its own at_ms may say anything)
        stamp = timestamp_ms if timestamp_ms and timestamp_ms > 0 else state.at_ms
        if state.readable and not state.halted and state.at_ms:
            stamp = state.at_ms  # a verified resume: its signed time
        self.at_ms = max(self.at_ms, stamp or 0)
        self.halted = state.halted
        self.reason = state.reason if state.readable else f"{state.reason} (record {source or '?'})"
        metrics.HALTED.set(1 if self.halted else 0)
        metrics.CONTROL_UNREADABLE.set(0 if state.readable else 1)
        if not state.readable:
            log.error("kill switch ON, failing closed: %s", self.reason)
            return
        log.warning("kill switch %s%s", "ON: new orders halted" if self.halted else "off",
                    f" ({self.reason})" if self.reason else "")

    def fail_closed(self, reason: str) -> None:
        """Halt because the switch's state cannot be known; a later valid record lifts it."""
        self.halted, self.reason = True, reason
        metrics.HALTED.set(1)
        log.error("kill switch ON, failing closed: %s", reason)


class Resolutions:
    """Applies operators' verdicts to the ledger, each one an event."""

    def __init__(self, key: str, ledger: Ledger, events: EventWriter) -> None:
        self.key = key
        self.ledger = ledger
        self.events = events

    def apply(self, command_id: str, value: bytes | None, source: RecordRef | None,
              timestamp_ms: int | None) -> None:
        record = commands.read_resolution(value)
        refusal = controls.check_signed(controls.KIND_RESOLVE, record, self.key, last_at_ms=0,
                                        record_ts_ms=timestamp_ms, now_ms=int(time.time() * 1000))
        if refusal is None and (record is None or record.get("command_id") != command_id):
            refusal = controls.Refusal("bad_signature", "the record names another command than its key")
        if refusal is not None:
            controls.REFUSED.labels(refusal.reason).inc()
            log.error("resolution of %s (record %s) refused: %s", command_id, source or "?", refusal.detail)
            return
        assert record is not None
        entry = self.ledger.get(command_id)
        if entry is None or entry.state != "INTENT":
            log.info("resolution of %s ignored: it is %s", command_id, entry.state if entry else "not in the ledger")
            return
        placed = str(record.get("placed") or "")
        if placed:
            entry.state, entry.broker_order_id = "SUBMITTED", placed
            self.events.emit(entry, entry, "SUBMITTED", broker_order_id=placed, reason="resolved by an operator: placed")
        else:
            entry.state = "FAILED"
            self.events.emit(entry, entry, "FAILED", reason="resolved by an operator: not placed")
        entry.extra.pop(PARKED, None)
        self.ledger.put(entry)


class OrderControl:
    """Routes each order.control record by its key; records with other keys are ignored."""

    def __init__(self, switch: KillSwitch, resolutions: Resolutions) -> None:
        self.switch = switch
        self.resolutions = resolutions

    def apply(self, key: bytes | None, value: bytes | None, source: RecordRef | None = None,
              timestamp_ms: int | None = None) -> None:
        if key is not None and key.startswith(RESOLVE_PREFIX):
            self.resolutions.apply(key[len(RESOLVE_PREFIX):].decode("utf-8", "replace"), value, source, timestamp_ms)
        elif key == KILL_SWITCH_KEY:
            self.switch.apply(value, source, timestamp_ms)
