"""``marketpipe trade``: order commands from Kafka to the jvQuant trade API, at most once.

The parts, each in its module: the command state machine (:mod:`marketpipe.trader.machine`,
where the at-most-once steps are listed), the poison-record policy (:mod:`marketpipe.trader.poison`),
the event writer (:mod:`marketpipe.trader.events`), the kill switch
(:mod:`marketpipe.trader.killswitch`) and fill and position polling
(:mod:`marketpipe.trader.fills`). :class:`Trader` builds them for one broker account and is what
the loop drives; the command's offset is committed only after its events and ledger entry are
acknowledged by Kafka.

The kill switch (order.control, compacted, replayed from its start) is read to its end
before the first command, and fails closed (:mod:`marketpipe.trader.killswitch`).

Daily limits count per broker account and are rebuilt from the ledger at every (re)start.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from marketpipe import providers, topics
from marketpipe.settings import Settings
from marketpipe.trader import names, rules
from marketpipe.trader.events import EventWriter
from marketpipe.trader.fills import FillPoll, PositionPublisher
from marketpipe.trader.killswitch import KillSwitch, OrderControl, Resolutions
from marketpipe.trader.ledger import Ledger
from marketpipe.trader.machine import Checks, CommandMachine, Outcome
from marketpipe.trader.order_command import RecordRef
from marketpipe.trader.poison import PoisonPolicy
from marketpipe.trader.trade_api import TradeApi

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
        self.names = names.Names(lambda symbol: ref.name if (ref := self.reference.get(symbol)) else "")
        self.poison = PoisonPolicy(key, self.accounts, self.ledger, self.events)
        self.machine = CommandMachine(self.codec, Checks(key, self.accounts, reference, limits, self.counters, self.names),
                                      broker, self.ledger, self.events, self.switch, self.poison,
                                      poll_seconds=settings.trader.poll_seconds, crash_point=settings.trader.crash_point)
        self.last_poll = 0.0

    def on_control(self, key: bytes | None, value: bytes | None, source: RecordRef | None = None,
                   timestamp_ms: int | None = None) -> None:
        """Apply one order.control record (:mod:`marketpipe.trader.killswitch`)."""
        self.control.apply(key, value, source, timestamp_ms)

    def handle(self, value: bytes, received_ns: int, source: RecordRef | None = None) -> Outcome:
        """Act on one order.commands record (:mod:`marketpipe.trader.machine`); never raises for its content."""
        return self.machine.handle(value, received_ns, source)

    # ---- polling -------------------------------------------------------------------------------
    def maybe_poll(self) -> None:
        now = time.monotonic()
        if now - self.last_poll >= self.settings.trader.poll_seconds:
            self.last_poll = now
            self.machine.reconcile_parked()
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
            self.machine.reconcile(entry, entry, 0, resend=entry.expires_at > int(time.time() * 1000))


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


