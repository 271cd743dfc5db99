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
the command stays UNKNOWN. Fills, status changes and positions are polled from the counter
(:mod:`marketpipe.trader.fills`).

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
before the first command, and fails closed (:mod:`marketpipe.trader.killswitch`).

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
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from marketpipe import providers, topics
from marketpipe.settings import Settings
from marketpipe.trader import metrics, names, rules, signing
from marketpipe.trader.events import EventWriter, Subject
from marketpipe.trader.fills import FillPoll, PositionPublisher
from marketpipe.trader.killswitch import KillSwitch, OrderControl, Resolutions
from marketpipe.trader.ledger import LAST_NOTE, PARKED, Entry, Ledger, NotAcknowledged
from marketpipe.trader.order_command import OrderCommand, RecordRef, decode
from marketpipe.trader.reconcile import Hooks, settle
from marketpipe.trader.trade_api import BrokerRejected, OutcomeUnknown, TradeApi

log = logging.getLogger(__name__)

#: the provider whose trade API the trader serves (its account: JVQUANT_TRADE_ACCOUNT); the registry builds
#: the client, so the trader core names no provider's class
TRADE_PROVIDER = "jvquant"



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
class Unreadable:
    """A record no command could be read from: named by where it came from (stable on redelivery)."""

    command_id: str
    account: str = ""
    symbol: str = ""
    side: str | None = None
    price: Decimal | None = None
    volume: int = 0


@dataclass
class Progress:
    """How far handling one command got, so a failure can be reported truthfully."""

    cmd: OrderCommand | None = None
    verified: bool = False
    entry: Entry | None = None


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
        producer = Producer({**settings.kafka.client_config(), "enable.idempotence": True, "acks": "all",
                             "linger.ms": 2})
        self.events = EventWriter(producer, settings.topic(topics.ORDER_EVENTS),
                                  self.codec.encoder("OrderEvent", settings.topic(topics.ORDER_EVENTS)), self.accounts,
                                  TRADE_PROVIDER)
        self.groups = groups(settings)
        # the ledger writes with the same producer, and counts its failures with the events'
        self.ledger = Ledger(producer, settings.topic(topics.ORDER_LEDGER), self.groups.ledger, self.events.deliveries)
        self.switch = KillSwitch(key)
        self.control = OrderControl(self.switch, Resolutions(key, self.ledger, self.events))
        self.fills = FillPoll(broker, self.ledger, self.events)
        self.positions = PositionPublisher(broker, self.codec, settings.topic(topics.ORDER_POSITIONS), self.accounts,
                                           self.events)
        self.poisoned = 0
        self.crash_point = settings.trader.crash_point
        self.last_poll = 0.0
        self.names = names.Names(lambda symbol: ref.name if (ref := self.reference.get(symbol)) else "")
        #: how long one command may hold its partition before it is parked
        self.settle_block_s = 10.0

    # ---- accounts ---------------------------------------------------------------------------
    def public_account(self, name: Any) -> str:
        """The name an account may have outside this process (never a number in clear)."""
        name = str(name or "")
        return (self.accounts.resolve(name) or signing.account_tag(name, self.key)) if name else ""

    # ---- kill switch --------------------------------------------------------------------------
    def on_control(self, key: bytes | None, value: bytes | None, source: RecordRef | None = None,
                   timestamp_ms: int | None = None) -> None:
        """Apply one order.control record (:mod:`marketpipe.trader.killswitch`)."""
        self.control.apply(key, value, source, timestamp_ms)

    def unresolved_for(self, entry: Entry) -> Entry | None:
        """An unresolved (INTENT) command of the same account and symbol: it blocks new ones (fail closed;
        it also makes two same-fingerprint orders, which /check_order cannot tell apart, impossible)."""
        return next((e for e in self.ledger.unresolved()
                     if e.command_id != entry.command_id and e.account == entry.account and e.symbol == entry.symbol),
                    None)

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
            cmd = decode(self.codec, value)
        except CodecError as exc:
            self.poison(Unreadable(str(source or "unknown-record")), "undecodable", str(exc), received_ns, source)
            return Outcome()
        progress.cmd = cmd
        now_ms = int(time.time() * 1000)
        if cmd.price is not None:
            try:
                signing.exact_price(cmd.price)
            except ValueError as exc:
                self.poison(cmd, "price", str(exc), received_ns, source)
                return Outcome()
        if not signing.verify(cmd.as_record(), self.key):
            # no ledger entry: a forged command must not be able to block the genuine one
            self.poison(cmd, "signature", "missing or invalid HMAC signature", received_ns, source)
            return Outcome()
        progress.verified = True
        entry = self.ledger.get(cmd.command_id)
        if entry is not None:
            if entry.state == "INTENT":
                progress.entry = entry
                return self.reconcile(entry, cmd, received_ns, resend=cmd.expires_at > now_ms)
            log.info("%s already %s: duplicate delivery ignored", cmd.command_id, entry.state)
            return Outcome()
        served = self.accounts.resolve(cmd.account)
        cmd = replace(cmd, account=served or self.public_account(cmd.account))  # the public name from here on
        progress.cmd = cmd
        entry = Entry(cmd.command_id, cmd.account, cmd.action, cmd.symbol, "ACCEPTED",
                      side=cmd.side, price=str(cmd.price) if cmd.price is not None else None,
                      volume=int(cmd.volume or 0), expires_at=int(cmd.expires_at))
        progress.entry = entry
        if cmd.expires_at < now_ms:
            return self.reject(entry, cmd, "expired", f"expired {now_ms - cmd.expires_at} ms ago", received_ns)
        if served is None:
            return self.reject(entry, cmd, "account", f"account {cmd.account} is not served by this trader "
                               f"(it serves {self.accounts.public})", received_ns)
        if cmd.action == "CANCEL":
            return self.cancel(entry, cmd, received_ns)
        ref = self.reference.get(cmd.symbol)
        rejection = rules.check_place(cmd.as_record(), self.limits, ref, self.counters, rules.day_of(now_ms),
                                      time.monotonic(), self.switch.halted)
        if rejection is not None:
            reason = rejection.reason
            if rejection.rule == "kill_switch" and self.switch.reason:
                reason = f"{reason}: {self.switch.reason}"
            return self.reject(entry, cmd, rejection.rule, reason, received_ns)
        blocking = self.unresolved_for(entry)
        if blocking is not None:
            same = " with the same fingerprint" if (blocking.side, blocking.price, blocking.volume) == \
                (entry.side, entry.price, entry.volume) else ""
            return self.reject(entry, cmd, "unresolved_order",
                               f"command {blocking.command_id}{same} for {entry.account} {entry.symbol} is unresolved "
                               f"({blocking.extra.get(PARKED) or 'being settled'}); marketpipe order resolve "
                               f"{blocking.command_id} --placed ID | --not-placed", received_ns)
        if not self.names.of(cmd.symbol):
            return self.reject(entry, cmd, "unknown_name", f"no security name (证券名称) for {cmd.symbol} in the "
                               "reference file nor on md.quote: /buy and /sale need it", received_ns)
        self.events.emit(entry, cmd, "ACCEPTED", received_ns=received_ns)
        return self.submit(entry, cmd, ref, received_ns)

    def poison(self, cmd: OrderCommand | Unreadable, rule: str, reason: str, received_ns: int,
               source: RecordRef | None) -> None:
        """REJECTED without a ledger entry, counted; the caller commits the offset."""
        self.poisoned += 1
        metrics.POISON.labels(rule).inc()
        cmd = replace(cmd, account=self.public_account(cmd.account))  # as sent: maybe a number
        self.events.emit(None, cmd, "REJECTED", rule=rule, reason=reason, received_ns=received_ns, source=source)
        self.events.flush()

    def unhandled(self, progress: Progress, exc: Exception, received_ns: int, source: RecordRef | None) -> Outcome:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        cmd: OrderCommand | Unreadable = progress.cmd or Unreadable(str(source or "unknown-record"))
        entry = progress.entry
        try:
            if entry is not None and entry.intent_ms and not entry.final:
                # the INTENT is durable and the broker may have the order: not a rejection
                self.poisoned += 1
                metrics.POISON.labels("unhandled").inc()
                self.events.emit(entry, cmd, "UNKNOWN", rule="unhandled",
                          reason=f"{reason}; the intent is reconciled with the broker at the next start",
                          received_ns=received_ns)
                self.events.flush()
            elif entry is not None and progress.verified and not entry.final:
                self.poisoned += 1
                metrics.POISON.labels("unhandled").inc()
                entry.state = "REJECTED"  # final in the ledger: a redelivery is not handled again
                self.events.emit(entry, cmd, "REJECTED", rule="unhandled", reason=reason, received_ns=received_ns)
                self.ledger.put(entry)
            else:
                self.poison(cmd, "unhandled", reason, received_ns, source)
        except (NotAcknowledged, BufferError):
            raise
        except Exception:  # even the report failed (e.g. a field no event can hold)
            log.exception("command at %s: rejection event could not be written either; skipped", source or "?")
        return Outcome()

    def reject(self, entry: Entry, cmd: Subject, rule: str, reason: str, received_ns: int) -> Outcome:
        entry.state = "REJECTED"
        self.events.emit(entry, cmd, "REJECTED", rule=rule, reason=reason, received_ns=received_ns)
        self.ledger.put(entry)  # flushes the event too
        return Outcome()

    def submit(self, entry: Entry, cmd: OrderCommand, ref: rules.Reference | None, received_ns: int) -> Outcome:
        price = Decimal(cmd.price or 0)  # check_place refused a command without a positive price
        entry.state, entry.intent_ms = "INTENT", int(time.time() * 1000)
        entry.notional = str(price * entry.volume)
        self.counters.record(entry.account, entry.intent_ms // 86_400_000, price * entry.volume, time.monotonic())
        # the INTENT is made durable by reconcile right before the one send
        return self.reconcile(entry, cmd, received_ns, send_first=True)

    def reconcile(self, entry: Entry, cmd: Subject, received_ns: int, resend: bool = True,
                  send_first: bool = False, block_s: float | None = None) -> Outcome:
        """Send (``send_first``) and/or resolve an INTENT whose broker call may have happened.

        See :func:`marketpipe.trader.reconcile.settle`: an order is sent at most once; one that provably never
        reached the broker is sent while ``resend`` (the command has not expired) holds. One still unresolved
        after ``block_s`` is parked (INTENT, reason on order.events) and its partition moves on: the background
        poll keeps reconciling it, and new commands for its account and symbol are refused until then.
        """
        name = self.names.of(cmd.symbol)

        def note(reason: str) -> None:
            if entry.extra.get(LAST_NOTE) == reason:
                return  # a parked command asked again: said once
            entry.extra[LAST_NOTE] = reason
            self.events.emit(entry, cmd, "UNKNOWN", reason=reason, received_ns=received_ns)
            self.events.flush()

        settled = settle(self.broker, entry, name,
                         Hooks(record=lambda: self.ledger.put(entry), note=note, halted=self.switch.halted_now),
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
            self.events.emit(entry, cmd, "REJECTED", rule="kill_switch", reason=f"{settled.reason}: {self.switch.reason}",
                      received_ns=received_ns)
            self.ledger.put(entry)
            return Outcome()
        if settled.state == "FAILED":
            entry.state = "FAILED"
            self.events.emit(entry, cmd, "FAILED", reason=settled.reason, received_ns=received_ns)
            self.ledger.put(entry)
            return Outcome()
        if settled.answered and self.crash_point == "after_broker_accept":
            log.critical("crash point %s reached: SIGKILL", self.crash_point)
            os.kill(os.getpid(), signal.SIGKILL)
        entry.state, entry.broker_order_id = "SUBMITTED", settled.order_id
        self.events.emit(entry, cmd, "SUBMITTED", broker_order_id=settled.order_id, reason=settled.reason or None,
                  received_ns=received_ns)
        self.ledger.put(entry)
        return Outcome()

    def reconcile_parked(self) -> None:
        """One short pass over the parked commands (the background half of :meth:`reconcile`)."""
        now_ms = int(time.time() * 1000)
        for entry in [e for e in self.ledger.unresolved() if e.extra.get(PARKED)]:
            self.reconcile(entry, entry, 0, resend=entry.expires_at > now_ms,
                           block_s=min(1.0, self.settings.trader.poll_seconds))

    def cancel(self, entry: Entry, cmd: OrderCommand, received_ns: int) -> Outcome:
        target = self.ledger.get(cmd.target_command_id or "")
        order_id = cmd.broker_order_id or (target.broker_order_id if target else None)
        if not order_id:
            return self.reject(entry, cmd, "cancel_target", "no broker order id known for the target", received_ns)
        entry.broker_order_id = order_id
        self.events.emit(entry, cmd, "CANCEL_REQUESTED", broker_order_id=order_id, received_ns=received_ns)
        try:
            message = self.broker.cancel(order_id)
        except (BrokerRejected, OutcomeUnknown) as exc:
            entry.state = "FAILED"
            self.events.emit(entry, cmd, "FAILED", broker_order_id=order_id, reason=str(exc), received_ns=received_ns)
        else:
            entry.state = "DONE"
            log.info("%s: cancel of %s answered: %s", cmd.command_id, order_id, message)
        self.ledger.put(entry)
        return Outcome()

    # ---- polling -------------------------------------------------------------------------------
    def maybe_poll(self) -> None:
        now = time.monotonic()
        if now - self.last_poll >= self.settings.trader.poll_seconds:
            self.last_poll = now
            self.reconcile_parked()
            self.fills.poll()
            self.positions.publish()

    # ---- startup ------------------------------------------------------------------------------
    def recover(self, consumer_config: dict[str, Any]) -> None:
        self.ledger.load(consumer_config)
        # every order this broker account sent today counts, whichever process sent it
        self.counters.rebuild(self.ledger.entries.values(), self.accounts.public)
        today = (self.accounts.public, rules.day_of(int(time.time() * 1000)))
        log.info("daily usage of %s from the ledger: %s notional in %d orders", self.accounts.public,
                 self.counters.daily_notional.get(today, Decimal(0)), self.counters.daily_orders.get(today, 0))
        for entry in self.ledger.unresolved():
            log.warning("%s was INTENT at the last stop: reconciling", entry.command_id)
            self.reconcile(entry, entry, 0, resend=entry.expires_at > int(time.time() * 1000))


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
        trader.switch.fail_closed(f"order.control not read to its end in {timeout:.0f} s")


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

    trader.switch.refresh = drain_control
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
            trader.events.flush()
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
        trader.events.flush()


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


