"""``marketpipe trade``: order commands from Kafka to the jvQuant trade API, at most once.

For each command, in partition order:

1. decode (Avro OrderCommand) → verify the HMAC signature → reject if expired;
2. idempotency: a command id already in the ledger is not acted on again; one left in
   ``INTENT`` by a crash is reconciled against the broker's order list first;
3. pre-trade checks (:mod:`marketpipe.trader.rules`), the kill switch included;
4. ledger ``INTENT`` written and flushed → broker call → ledger ``SUBMITTED``;
5. every state change is an ``OrderEvent`` on ``order.events``; the command's offset is
   committed only after its events and ledger entry are acknowledged by Kafka.

A broker call without a usable answer (dropped connection, timeout) is never retried
blindly: the order list decides — found: adopt its id; provably absent: send; otherwise
the command stays UNKNOWN. Fills and status changes are polled from ``/check_order``;
positions from ``/check_hold`` go to ``order.positions``.

Crash testing: ``MARKETPIPE_TRADER_CRASH_POINT=after_broker_accept`` makes the process
SIGKILL itself right after the broker accepted an order and before anything is recorded —
the worst moment, used by the tests to prove reconciliation.

Poison records: a record on order.commands that cannot be handled never stops the trader
and never stalls its partition. Undecodable (rule ``undecodable``), a price outside the
schema's decimal(18,3) (``price``), a bad signature (``signature``) or any exception while
handling one command (``unhandled``, with the exception) ends as a REJECTED event with the
rule and reason, is counted (``marketpipe_trader_poison_records_total``) and its offset is
committed. A record with no readable command id gets the id ``<topic>/<partition>/<offset>``:
stable, so a redelivery of the same record yields the same event id. Two exceptions: an
exception after the ledger INTENT was written means the broker may have the order, so the
event is UNKNOWN and the INTENT is reconciled at the next start; and Kafka failing our own
writes is an outage, not a bad record: while it is only slow (a paused broker, a leader moving)
the trader waits and says so every 30 s, calling nobody; a write Kafka gave up on
(:class:`marketpipe.trader.ledger.NotAcknowledged`) stops the process in one line (nothing is
committed; the supervisor restarts it).

The kill switch (order.control, compacted, replayed from its start) is read to its end
before the first command, and fails closed: an unreadable record halts trading until a newer
valid record arrives (``marketpipe order resume``).

Accounts: the trader serves one broker account (JVQUANT_TRADE_ACCOUNT). A command names it
by its number or by MARKETPIPE_TRADER_ACCOUNT_ALIAS; any other name is rejected (rule
``account``). Only the public name (the alias, else a keyed hash, see
:class:`marketpipe.trader.rules.Accounts`) is written to events, ledger, positions and logs. Daily
limits count per broker account and are rebuilt from the ledger at every (re)start.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

from marketpipe import providers
from marketpipe.kafka import topics
from marketpipe.kafka.delivery import Deliveries, wait_acknowledged
from marketpipe.settings import Settings
from marketpipe.trader import commands, controls, metrics, names, rules, signing, statuses
from marketpipe.trader.ledger import Entry, Ledger, NotAcknowledged
from marketpipe.trader.reconcile import Hooks, settle
from marketpipe.trader.trade_api import BrokerRejected, OutcomeUnknown, TradeApi

log = logging.getLogger(__name__)

#: the provider whose trade API the trader serves (its account: JVQUANT_TRADE_ACCOUNT); the registry builds
#: the client, so the trader core names no provider's class
TRADE_PROVIDER = "jvquant"

KILL_SWITCH_KEY = commands.KILL_SWITCH_KEY
#: ledger entry ``extra`` keys: the last (state, filled volume) emitted for the broker order; why
#: an unresolved command is parked (reconciled in the background); the last UNKNOWN reason emitted
REPORTED, PARKED, LAST_NOTE = "reported", "parked", "last_note"
#: order.control keys of operator resolutions: ``resolve:<command id>``
RESOLVE_PREFIX = b"resolve:"


@dataclass(frozen=True)
class Groups:
    """The trader's consumer groups. They carry the topic prefix: two pipelines sharing a cluster
    must not share offsets, nor rebalance each other's traders."""

    commands: str
    control: str
    ledger: str


def groups(settings: Settings) -> Groups:
    return Groups(commands=settings.group_id("marketpipe-trader"),
                  control=settings.group_id("marketpipe-trader-control"),
                  ledger=settings.group_id("marketpipe-trader-ledger-reader"))


def load_reference(path: str) -> dict[str, rules.Reference]:
    if not path:
        return {}
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return {sym: rules.Reference(Decimal(str(v["prev_close"])) if v.get("prev_close") is not None else None,
                                 v.get("name", ""), bool(v.get("st", False))) for sym, v in raw.items()}


def limits_from(settings: Settings) -> rules.Limits:
    t = settings.trader
    return rules.Limits(allow=frozenset(t.allow), max_order_notional=t.max_order_notional,
                        max_daily_notional=t.max_daily_notional,
                        max_orders_per_second=t.max_orders_per_second, max_daily_orders=t.max_daily_orders)


@dataclass
class Outcome:
    commit: bool = True  # False: leave the offset uncommitted (retry after restart)


@dataclass(frozen=True)
class RecordRef:
    """Where a record came from: names a record that has no readable command id."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def of(cls, msg: Any) -> "RecordRef":
        return cls(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass
class Progress:
    """How far handling one command got, so a failure can be reported truthfully."""

    cmd: dict[str, Any] | None = None
    verified: bool = False
    entry: Entry | None = None


def _event_price(value: Any) -> Decimal | None:
    """A price an OrderEvent can carry; None for one outside decimal(18,3) (the reason says it)."""
    try:
        return signing.exact_price(value) if value is not None else None
    except ValueError:
        return None


def _volume(value: Any) -> int:
    try:
        volume = int(value or 0)
    except (TypeError, ValueError):
        return 0
    return volume if -2**63 <= volume < 2**63 else 0


class Trader:
    def __init__(self, settings: Settings, broker: TradeApi, reference: dict[str, rules.Reference],
                 limits: rules.Limits) -> None:
        from confluent_kafka import Producer

        from marketpipe.schemas import codec

        key = settings.order_signing_key.reveal()
        if not key:
            raise SystemExit("marketpipe trade: MARKETPIPE_ORDER_SIGNING_KEY is not set "
                             "(commands are verified with it; unsigned commands are rejected)")
        self.settings = settings
        self.key = key
        self.broker = broker
        self.reference = reference
        self.limits = limits
        self.counters = rules.Counters()
        self.accounts = rules.Accounts.serving(broker.account, settings.trader.account_alias, key)
        self.codec = codec.from_settings(settings)
        self.encode_event = self.codec.encoder("OrderEvent", settings.topic(topics.ORDER_EVENTS))
        self.producer = Producer({**settings.kafka.client_config(), "enable.idempotence": True, "acks": "all",
                                  "linger.ms": 2})
        #: what Kafka did not take of the events, ledger entries and positions this trader writes
        self.deliveries = Deliveries(log)
        self.groups = groups(settings)
        self.ledger = Ledger(self.producer, settings.topic(topics.ORDER_LEDGER), self.groups.ledger, self.deliveries)
        self.halted = False
        self.halt_reason = ""
        self.control_at_ms = 0  # newest order.control record applied (a resume must be newer)
        self.poisoned = 0
        self.crash_point = settings.trader.crash_point
        self.last_poll = 0.0
        self.names = names.Names(lambda symbol: ref.name if (ref := self.reference.get(symbol)) else "")
        #: reads order.control now (run_loop sets it): the kill switch is honoured while a command settles
        self.check_control: Callable[[], None] = lambda: None
        #: how long one command may hold its partition before it is parked
        self.settle_block_s = 10.0

    # ---- events -----------------------------------------------------------------------------
    def public_account(self, name: Any) -> str:
        """The name an account may have outside this process (never a number in clear)."""
        name = str(name or "")
        return (self.accounts.resolve(name) or signing.account_tag(name, self.key)) if name else ""

    def emit(self, entry: Entry | None, cmd: dict[str, Any], state: str, *, rule: str | None = None,
             reason: str | None = None, broker_order_id: str | None = None, filled: int = 0,
             avg_price: Decimal | None = None, received_ns: int = 0, source: RecordRef | None = None) -> None:
        if entry is not None:
            entry.events += 1
            event_id = f"{cmd['command_id']}:{entry.events}"
        elif source is not None:  # no ledger entry (forged, poison): one event per record, stable on redelivery
            event_id = str(source) if cmd["command_id"] == str(source) else f"{cmd['command_id']}@{source}"
        else:
            event_id = f"{cmd['command_id']}:{time.time_ns()}"
        event_time = int(time.time() * 1000)
        record = {
            "event_id": event_id, "command_id": str(cmd["command_id"]),
            # names reaching here are public already, but a ledger entry written before accounts were
            # resolved may still hold the number
            "account": self.accounts.resolve(str(cmd.get("account") or "")) or str(cmd.get("account") or ""),
            "provider": TRADE_PROVIDER, "state": state,
            "rule": rule, "reason": reason, "broker_order_id": broker_order_id, "symbol": str(cmd.get("symbol") or ""),
            "side": cmd.get("side") if cmd.get("side") in ("BUY", "SELL") else None,
            "price": _event_price(cmd.get("price")), "volume": _volume(cmd.get("volume")), "filled_volume": filled,
            "avg_fill_price": _event_price(avg_price),
            "event_time": event_time, "receive_time_ns": received_ns,
        }
        self.producer.produce(self.settings.topic(topics.ORDER_EVENTS), key=cmd["command_id"].encode(),
                              value=self.encode_event(record), timestamp=event_time, on_delivery=self.deliveries)
        metrics.EVENTS.labels(state).inc()
        if rule:
            metrics.REJECTIONS.labels(rule).inc()
        log.info("%s %s%s", cmd["command_id"], state, f" ({rule}: {reason})" if rule else
                 f" ({reason})" if reason else "")

    def flush(self) -> None:
        """Return once Kafka has every event written so far: a paused broker is waited out (logged every
        30 s); a record Kafka gave up on stops the trader (nothing is committed past it)."""
        unwritten = wait_acknowledged(self.producer.flush, self.deliveries, "order events", log)
        if unwritten:
            raise NotAcknowledged(f"order events not written by Kafka: {unwritten}")

    # ---- kill switch --------------------------------------------------------------------------
    def on_control(self, key: bytes | None, value: bytes | None, source: RecordRef | None = None,
                   timestamp_ms: int | None = None) -> None:
        """Apply one order.control record. Halting needs no key; lifting a halt needs a signed, fresh,
        new record (:mod:`marketpipe.trader.controls`), else the trader stays halted."""
        if key is not None and key.startswith(RESOLVE_PREFIX):
            self.on_resolve(key[len(RESOLVE_PREFIX):].decode("utf-8", "replace"), value, source, timestamp_ms)
            return
        if key != KILL_SWITCH_KEY:
            return
        state = commands.read_kill_switch(value)
        if self.halted and not state.halted:
            refusal = controls.check_signed(controls.KIND_KILL_SWITCH, state.record, self.key,
                                            last_at_ms=self.control_at_ms, record_ts_ms=timestamp_ms,
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
        self.control_at_ms = max(self.control_at_ms, stamp or 0)
        self.halted = state.halted
        self.halt_reason = state.reason if state.readable else f"{state.reason} (record {source or '?'})"
        metrics.HALTED.set(1 if self.halted else 0)
        metrics.CONTROL_UNREADABLE.set(0 if state.readable else 1)
        if not state.readable:
            log.error("kill switch ON, failing closed: %s", self.halt_reason)
            return
        log.warning("kill switch %s%s", "ON: new orders halted" if self.halted else "off",
                    f" ({self.halt_reason})" if self.halt_reason else "")

    def on_resolve(self, command_id: str, value: bytes | None, source: RecordRef | None,
                   timestamp_ms: int | None) -> None:
        """An operator's signed verdict on an unresolved command (``marketpipe order resolve``)."""
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
        cmd = self.command_of(entry)
        placed = str(record.get("placed") or "")
        if placed:
            entry.state, entry.broker_order_id = "SUBMITTED", placed
            self.emit(entry, cmd, "SUBMITTED", broker_order_id=placed, reason="resolved by an operator: placed")
        else:
            entry.state = "FAILED"
            self.emit(entry, cmd, "FAILED", reason="resolved by an operator: not placed")
        entry.extra.pop(PARKED, None)
        self.ledger.put(entry)

    def command_of(self, entry: Entry) -> dict[str, Any]:
        return {"command_id": entry.command_id, "account": entry.account, "symbol": entry.symbol,
                "side": entry.side, "price": entry.price, "volume": entry.volume, "action": entry.action}

    def unresolved_for(self, entry: Entry) -> Entry | None:
        """An unresolved (INTENT) command of the same account and symbol: it blocks new ones (fail closed;
        it also makes two same-fingerprint orders, which /check_order cannot tell apart, impossible)."""
        return next((e for e in self.ledger.unresolved()
                     if e.command_id != entry.command_id and e.account == entry.account and e.symbol == entry.symbol),
                    None)

    def halted_now(self) -> bool:
        self.check_control()
        return self.halted

    # ---- commands -----------------------------------------------------------------------------
    def handle(self, value: bytes, received_ns: int, source: RecordRef | None = None) -> Outcome:
        """Act on one order.commands record. Never raises for what is in the record (module doc)."""
        progress = Progress()
        try:
            return self._handle(value, received_ns, source, progress)
        except (NotAcknowledged, BufferError):
            raise  # our own writes fail: an outage, not this record's fault; stop without committing
        except Exception as exc:  # the poison-record policy: one record never kills the trader
            log.exception("command at %s could not be handled", source or "?")
            return self.unhandled(progress, exc, received_ns, source)

    def _handle(self, value: bytes, received_ns: int, source: RecordRef | None, progress: Progress) -> Outcome:
        from marketpipe.schemas.codec import CodecError

        try:
            cmd = self.codec.decode(value, expect="OrderCommand").record
        except CodecError as exc:
            self.poison({"command_id": str(source or "unknown-record")}, "undecodable", str(exc), received_ns,
                        source)
            return Outcome()
        progress.cmd = cmd
        now_ms = int(time.time() * 1000)
        if cmd.get("price") is not None:
            try:
                signing.exact_price(cmd["price"])
            except ValueError as exc:
                self.poison(cmd, "price", str(exc), received_ns, source)
                return Outcome()
        if not signing.verify(cmd, self.key):
            # no ledger entry: a forged command must not be able to block the genuine one
            self.poison(cmd, "signature", "missing or invalid HMAC signature", received_ns, source)
            return Outcome()
        progress.verified = True
        entry = self.ledger.get(cmd["command_id"])
        if entry is not None:
            if entry.state == "INTENT":
                progress.entry = entry
                return self.reconcile(entry, cmd, received_ns, resend=cmd["expires_at"] > now_ms)
            log.info("%s already %s: duplicate delivery ignored", cmd["command_id"], entry.state)
            return Outcome()
        served = self.accounts.resolve(cmd["account"])
        cmd = {**cmd, "account": served or self.public_account(cmd["account"])}  # the public name from here on
        progress.cmd = cmd
        entry = Entry(cmd["command_id"], cmd["account"], cmd["action"], cmd["symbol"], "ACCEPTED",
                      side=cmd.get("side"), price=str(cmd["price"]) if cmd.get("price") is not None else None,
                      volume=int(cmd.get("volume") or 0), expires_at=int(cmd["expires_at"]))
        progress.entry = entry
        if cmd["expires_at"] < now_ms:
            return self.reject(entry, cmd, "expired", f"expired {now_ms - cmd['expires_at']} ms ago", received_ns)
        if served is None:
            return self.reject(entry, cmd, "account", f"account {cmd['account']} is not served by this trader "
                               f"(it serves {self.accounts.public})", received_ns)
        if cmd["action"] == "CANCEL":
            return self.cancel(entry, cmd, received_ns)
        ref = self.reference.get(cmd["symbol"])
        rejection = rules.check_place(cmd, self.limits, ref, self.counters, rules.day_of(now_ms), time.monotonic(),
                                      self.halted)
        if rejection is not None:
            reason = rejection.reason
            if rejection.rule == "kill_switch" and self.halt_reason:
                reason = f"{reason}: {self.halt_reason}"
            return self.reject(entry, cmd, rejection.rule, reason, received_ns)
        blocking = self.unresolved_for(entry)
        if blocking is not None:
            same = " with the same fingerprint" if (blocking.side, blocking.price, blocking.volume) == \
                (entry.side, entry.price, entry.volume) else ""
            return self.reject(entry, cmd, "unresolved_order",
                               f"command {blocking.command_id}{same} for {entry.account} {entry.symbol} is unresolved "
                               f"({blocking.extra.get(PARKED) or 'being settled'}); marketpipe order resolve "
                               f"{blocking.command_id} --placed ID | --not-placed", received_ns)
        if not self.names.of(cmd["symbol"]):
            return self.reject(entry, cmd, "unknown_name", f"no security name (证券名称) for {cmd['symbol']} in the "
                               "reference file nor on md.quote: /buy and /sale need it", received_ns)
        self.emit(entry, cmd, "ACCEPTED", received_ns=received_ns)
        return self.submit(entry, cmd, ref, received_ns)

    def poison(self, cmd: dict[str, Any], rule: str, reason: str, received_ns: int,
               source: RecordRef | None) -> None:
        """REJECTED without a ledger entry, counted; the caller commits the offset."""
        self.poisoned += 1
        metrics.POISON.labels(rule).inc()
        cmd = {**cmd, "account": self.public_account(cmd.get("account"))}  # as sent: maybe a number
        self.emit(None, cmd, "REJECTED", rule=rule, reason=reason, received_ns=received_ns, source=source)
        self.flush()

    def unhandled(self, progress: Progress, exc: Exception, received_ns: int, source: RecordRef | None) -> Outcome:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        cmd = progress.cmd or {"command_id": str(source or "unknown-record")}
        entry = progress.entry
        try:
            if entry is not None and entry.intent_ms and not entry.final:
                # the INTENT is durable and the broker may have the order: not a rejection
                self.poisoned += 1
                metrics.POISON.labels("unhandled").inc()
                self.emit(entry, cmd, "UNKNOWN", rule="unhandled",
                          reason=f"{reason}; the intent is reconciled with the broker at the next start",
                          received_ns=received_ns)
                self.flush()
            elif entry is not None and progress.verified and not entry.final:
                self.poisoned += 1
                metrics.POISON.labels("unhandled").inc()
                entry.state = "REJECTED"  # final in the ledger: a redelivery is not handled again
                self.emit(entry, cmd, "REJECTED", rule="unhandled", reason=reason, received_ns=received_ns)
                self.ledger.put(entry)
            else:
                self.poison(cmd, "unhandled", reason, received_ns, source)
        except (NotAcknowledged, BufferError):
            raise
        except Exception:  # even the report failed (e.g. a field no event can hold)
            log.exception("command at %s: rejection event could not be written either; skipped", source or "?")
        return Outcome()

    def reject(self, entry: Entry, cmd: dict[str, Any], rule: str, reason: str, received_ns: int) -> Outcome:
        entry.state = "REJECTED"
        self.emit(entry, cmd, "REJECTED", rule=rule, reason=reason, received_ns=received_ns)
        self.ledger.put(entry)  # flushes the event too
        return Outcome()

    def submit(self, entry: Entry, cmd: dict[str, Any], ref: rules.Reference | None, received_ns: int) -> Outcome:
        price = Decimal(cmd["price"])
        entry.state, entry.intent_ms = "INTENT", int(time.time() * 1000)
        entry.notional = str(price * entry.volume)
        self.counters.record(entry.account, entry.intent_ms // 86_400_000, price * entry.volume, time.monotonic())
        # the INTENT is made durable by reconcile right before the one send
        return self.reconcile(entry, cmd, received_ns, send_first=True)

    def reconcile(self, entry: Entry, cmd: dict[str, Any], received_ns: int, resend: bool = True,
                  send_first: bool = False, block_s: float | None = None) -> Outcome:
        """Send (``send_first``) and/or resolve an INTENT whose broker call may have happened.

        See :func:`marketpipe.trader.reconcile.settle`: an order is sent at most once; one that provably never
        reached the broker is sent while ``resend`` (the command has not expired) holds. One still unresolved
        after ``block_s`` is parked (INTENT, reason on order.events) and its partition moves on: the background
        poll keeps reconciling it, and new commands for its account and symbol are refused until then.
        """
        name = self.names.of(cmd["symbol"])

        def note(reason: str) -> None:
            if entry.extra.get(LAST_NOTE) == reason:
                return  # a parked command asked again: said once
            entry.extra[LAST_NOTE] = reason
            self.emit(entry, cmd, "UNKNOWN", reason=reason, received_ns=received_ns)
            self.flush()

        settled = settle(self.broker, entry, name,
                         Hooks(record=lambda: self.ledger.put(entry), note=note, halted=self.halted_now),
                         self.ledger.claimed_order_ids, send_first=send_first, may_send=resend and bool(name),
                         poll_s=min(1.0, self.settings.trader.poll_seconds),
                         block_s=self.settle_block_s if block_s is None else block_s)
        if settled.state == "PENDING":
            reason = f"parked: {settled.reason}; reconciled in the background"
            if entry.extra.get(PARKED) != reason:
                log.warning("%s still unresolved (%s): parked", entry.command_id, settled.reason)
                entry.extra[PARKED] = reason
                note(reason)
                self.ledger.put(entry)
            return Outcome()
        entry.extra.pop(PARKED, None)
        if settled.state == "HALTED":
            entry.state = "REJECTED"
            self.emit(entry, cmd, "REJECTED", rule="kill_switch", reason=f"{settled.reason}: {self.halt_reason}",
                      received_ns=received_ns)
            self.ledger.put(entry)
            return Outcome()
        if settled.state == "FAILED":
            entry.state = "FAILED"
            self.emit(entry, cmd, "FAILED", reason=settled.reason, received_ns=received_ns)
            self.ledger.put(entry)
            return Outcome()
        if settled.answered and self.crash_point == "after_broker_accept":
            log.critical("crash point %s reached: SIGKILL", self.crash_point)
            os.kill(os.getpid(), signal.SIGKILL)
        entry.state, entry.broker_order_id = "SUBMITTED", settled.order_id
        self.emit(entry, cmd, "SUBMITTED", broker_order_id=settled.order_id, reason=settled.reason or None,
                  received_ns=received_ns)
        self.ledger.put(entry)
        return Outcome()

    def reconcile_parked(self) -> None:
        """One short pass over the parked commands (the background half of :meth:`reconcile`)."""
        now_ms = int(time.time() * 1000)
        for entry in [e for e in self.ledger.unresolved() if e.extra.get(PARKED)]:
            self.reconcile(entry, self.command_of(entry), 0, resend=entry.expires_at > now_ms,
                           block_s=min(1.0, self.settings.trader.poll_seconds))

    def cancel(self, entry: Entry, cmd: dict[str, Any], received_ns: int) -> Outcome:
        target = self.ledger.get(cmd.get("target_command_id") or "")
        order_id = cmd.get("broker_order_id") or (target.broker_order_id if target else None)
        if not order_id:
            return self.reject(entry, cmd, "cancel_target", "no broker order id known for the target", received_ns)
        entry.broker_order_id = order_id
        self.emit(entry, cmd, "CANCEL_REQUESTED", broker_order_id=order_id, received_ns=received_ns)
        try:
            message = self.broker.cancel(order_id)
        except (BrokerRejected, OutcomeUnknown) as exc:
            entry.state = "FAILED"
            self.emit(entry, cmd, "FAILED", broker_order_id=order_id, reason=str(exc), received_ns=received_ns)
        else:
            entry.state = "DONE"
            log.info("%s: cancel of %s answered: %s", cmd["command_id"], order_id, message)
        self.ledger.put(entry)
        return Outcome()

    # ---- fills and positions ------------------------------------------------------------------
    def poll_broker(self) -> None:
        open_entries = {e.broker_order_id: e for e in self.ledger.open_orders() if e.broker_order_id}
        try:
            orders = self.broker.orders() if open_entries else []
        except (OutcomeUnknown, BrokerRejected) as exc:
            log.warning("order poll failed: %s", exc)
            return
        for order in orders:
            entry = open_entries.get(order.order_id)
            if entry is None:
                continue
            last_state, last_filled = entry.extra.get(REPORTED) or ("", entry.filled_volume)
            nxt = statuses.step(last_state, int(last_filled), order.status, order.deal_volume, order.volume)
            if nxt is None:
                continue
            cmd = {"command_id": entry.command_id, "account": entry.account, "symbol": entry.symbol,
                   "side": entry.side, "price": entry.price, "volume": entry.volume}
            entry.filled_volume, entry.broker_status = nxt.filled, order.status
            entry.extra[REPORTED] = [nxt.state, nxt.filled]  # durable: a restart does not emit it again
            if nxt.final:
                entry.state = "DONE"
            reason = order.status
            if nxt.state == statuses.REJECTED:
                reason = f"the counter lists the order as {order.status} (rejected after it was accepted)"
            self.emit(entry, cmd, nxt.state, broker_order_id=order.order_id, filled=nxt.filled,
                      avg_price=order.deal_price if nxt.filled else None, reason=reason)
            self.ledger.put(entry, flush=False)
        self.flush()

    def publish_positions(self) -> None:
        try:
            hold = self.broker.positions()
        except (OutcomeUnknown, BrokerRejected) as exc:
            log.warning("position poll failed: %s", exc)
            return
        from marketpipe.schemas.codec import CodecError
        from marketpipe.trader.ledger_codec import position_record

        topic = self.settings.topic(topics.ORDER_POSITIONS)
        now_ms = int(time.time() * 1000)
        encode = self.codec.encoder("Position", topic)
        for row in hold.get("hold_list") or []:
            account = self.accounts.public  # the number is a secret: never on a topic
            try:
                value = encode(position_record(account, row, now_ms))
            except CodecError as exc:  # one odd row must not stop the poll, nor the trader
                log.warning("position row of %s not published: %s", row.get("code"), exc)
                continue
            self.producer.produce(topic, key=f"{account}:{row.get('code')}".encode(), value=value,
                                  on_delivery=self.deliveries)
        self.producer.poll(0)

    def maybe_poll(self) -> None:
        now = time.monotonic()
        if now - self.last_poll >= self.settings.trader.poll_seconds:
            self.last_poll = now
            self.reconcile_parked()
            self.poll_broker()
            self.publish_positions()

    # ---- startup ------------------------------------------------------------------------------
    def recover(self, consumer_config: dict[str, Any]) -> None:
        self.ledger.load(consumer_config)
        # every order this broker account sent today counts, whichever process sent it
        self.counters.rebuild(self.ledger.entries.values(), self.accounts.public)
        today = (self.accounts.public, rules.day_of(int(time.time() * 1000)))
        log.info("daily usage of %s from the ledger: %s notional in %d orders", self.accounts.public,
                 self.counters.daily_notional.get(today, Decimal(0)), self.counters.daily_orders.get(today, 0))
        for entry in self.ledger.unresolved():
            cmd = self.command_of(entry)
            log.warning("%s was INTENT at the last stop: reconciling", entry.command_id)
            self.reconcile(entry, cmd, 0, resend=entry.expires_at > int(time.time() * 1000))


def _timestamp_ms(msg: Any) -> int | None:
    kind, ts = msg.timestamp()
    return ts if kind != 0 and ts > 0 else None  # 0: TIMESTAMP_NOT_AVAILABLE


def read_control_to_end(trader: Trader, control: Any, partitions: int, timeout: float = 30.0) -> None:
    """Apply order.control up to its end before any command is handled.

    Otherwise a restart would act on commands before it has seen a halt. If the topic cannot
    be read in time, trading starts halted (fail closed); a later record lifts it."""
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(at_end) < partitions and time.monotonic() < deadline:
        for msg in control.consume(100, timeout=0.5):
            if msg.error():
                if msg.error().code() == -191:  # _PARTITION_EOF
                    at_end.add(msg.partition())
                continue
            trader.on_control(msg.key(), msg.value(), RecordRef(msg.topic(), msg.partition(), msg.offset()),
                              _timestamp_ms(msg))
    if len(at_end) < partitions:
        trader.halted, trader.halt_reason = True, f"order.control not read to its end in {timeout:.0f} s"
        metrics.HALTED.set(1)
        log.error("kill switch ON, failing closed: %s", trader.halt_reason)


def open_quote_names(trader: Trader) -> names.QuoteNames | None:
    """The md.quote reader that feeds security names; None (reference names only) when it cannot start."""
    topic = trader.settings.topic(topics.MD_QUOTE)
    try:
        return names.QuoteNames(trader.settings.kafka.client_config(), topic,
                                trader.settings.group_id("marketpipe-trader-names"),
                                lambda v: trader.codec.decode(v, expect="Quote").record, trader.names)
    except Exception as exc:  # a missing topic must not stop trading on reference names
        log.warning("security names from %s unavailable (%s): reference file only", topic, exc)
        return None


def run_loop(trader: Trader, stop: threading.Event, idle_exit: float | None = None) -> None:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    s = trader.settings
    base = s.kafka.client_config()
    trader.recover(base)
    control = Consumer({**base, "group.id": trader.groups.control, "enable.auto.commit": False,
                        "enable.partition.eof": True})
    control_topic = s.topic(topics.ORDER_CONTROL)
    md = control.list_topics(control_topic, timeout=15).topics[control_topic]
    control.assign([TopicPartition(control_topic, p, OFFSET_BEGINNING) for p in md.partitions])
    read_control_to_end(trader, control, len(md.partitions))

    def drain_control() -> None:
        for ctl in control.consume(100, timeout=0):
            if not ctl.error():
                trader.on_control(ctl.key(), ctl.value(), RecordRef.of(ctl), _timestamp_ms(ctl))

    trader.check_control = drain_control
    quote_names = open_quote_names(trader)
    commands = Consumer({**base, "group.id": trader.groups.commands, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})

    def on_assign(consumer: Any, partitions: list[Any]) -> None:
        # another instance may have written the ledger since we read it: read it again
        trader.recover(base)

    commands.subscribe([s.topic(topics.ORDER_COMMANDS)], on_assign=on_assign)
    log.info("trader ready: consuming %s for account %s", s.topic(topics.ORDER_COMMANDS), trader.accounts.public)
    last_msg = time.monotonic()
    try:
        while not stop.is_set():
            drain_control()
            if quote_names is not None:
                quote_names.poll()
            msg = commands.poll(0.2)
            trader.maybe_poll()
            if msg is None:
                if idle_exit is not None and time.monotonic() - last_msg > idle_exit:
                    break
                continue
            if msg.error():
                log.warning("consumer: %s", msg.error())
                continue
            last_msg = time.monotonic()
            outcome = trader.handle(msg.value() or b"", time.time_ns(), RecordRef.of(msg))
            trader.flush()
            if outcome.commit:
                try:
                    commands.commit(message=msg, asynchronous=False)
                except KafkaException as exc:
                    log.warning("offset commit failed (the command will be seen again and deduplicated): %s", exc)
            else:
                # leave the offset; rewind so the command is retried after a pause
                commands.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
                time.sleep(1.0)
    finally:
        commands.close()
        control.close()
        if quote_names is not None:
            quote_names.close()
        trader.flush()


def trade_api(settings: Settings) -> TradeApi:
    """The trade API of :data:`TRADE_PROVIDER`, built by its registry entry (which checks its credentials)."""
    entry = providers.get(TRADE_PROVIDER)
    if entry.trade_api is None:
        raise SystemExit(f"marketpipe trade: provider {entry.name} has no trade API")
    return entry.trade_api(settings)


def build(settings: Settings, reference_path: str | None = None) -> Trader:
    limits = limits_from(settings)  # a bad MARKETPIPE_TRADER_* value stops the trader before anything else
    broker = trade_api(settings)
    reference = load_reference(reference_path or settings.trader.reference)
    if not reference:
        log.warning("no reference data (MARKETPIPE_TRADER_REFERENCE): every order will fail the price-band rule")
    return Trader(settings, broker, reference, limits)


