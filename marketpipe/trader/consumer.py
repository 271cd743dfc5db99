"""``marketpipe trade``: order commands from Kafka to the jvQuant trade API, at most once.

The parts, each in its module: the command state machine (:mod:`marketpipe.trader.machine`,
where the at-most-once steps are listed), the poison-record policy (:mod:`marketpipe.trader.poison`),
the event writer (:mod:`marketpipe.trader.events`), the kill switch
(:mod:`marketpipe.trader.killswitch`) and fill and position polling
(:mod:`marketpipe.trader.fills`). :class:`Trader` builds them for one broker account and is what
the loop drives; the command's offset is committed only after its events and ledger entry are
acknowledged by Kafka.

The kill switch fails closed (:mod:`marketpipe.trader.killswitch`); :mod:`marketpipe.trader.loop`
owns the Kafka consumers and reads it before the first command.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from marketpipe import providers
from marketpipe.kafka import topics
from marketpipe.kafka.clients import durable_producer_config
from marketpipe.settings import Settings
from marketpipe.trader import names, rules
from marketpipe.trader.events import EventWriter
from marketpipe.trader.fills import FillPoll, PositionPublisher
from marketpipe.trader.killswitch import KillSwitch, OrderControl, Resolutions
from marketpipe.trader.ledger import Ledger
from marketpipe.trader.machine import Checks, CommandMachine, Outcome
from marketpipe.trader.order_command import RecordRef
from marketpipe.trader.poison import PoisonPolicy
from marketpipe.trader.recovery import recover
from marketpipe.trader.trade_api import TradeApi

log = logging.getLogger(__name__)

#: the topics whose durability the trader depends on: a lost acknowledged record is a lost command,
#: intent (an order sent twice), event, kill switch or position (md.quote it only reads, for a price)
DURABLE_TOPICS = (topics.ORDER_COMMANDS, topics.ORDER_LEDGER, topics.ORDER_EVENTS, topics.ORDER_CONTROL,
                  topics.ORDER_POSITIONS)
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
    """The parts, built for one broker account and wired to one producer; what the loop drives."""

    def __init__(self, settings: Settings, broker: TradeApi, reference: dict[str, rules.Reference],
                 limits: rules.Limits) -> None:
        from confluent_kafka import Producer

        from marketpipe.schemas import codec

        key = settings.order_signing_key.reveal()
        if not key:
            raise SystemExit("marketpipe trade: MARKETPIPE_ORDER_SIGNING_KEY is not set "
                             "(commands are verified with it; unsigned commands are rejected)")
        self.settings = settings
        self.reference = reference
        self.counters = rules.Counters()
        self.accounts = rules.Accounts.serving(broker.account, settings.trader.account_alias, key)
        self.codec = codec.from_settings(settings)
        producer = Producer(durable_producer_config(settings.kafka.client_config(), {"linger.ms": 2}))
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

    def maybe_poll(self) -> None:
        """The background work, at most every poll interval: parked commands, fills, positions."""
        now = time.monotonic()
        if now - self.last_poll >= self.settings.trader.poll_seconds:
            self.last_poll = now
            self.machine.reconcile_parked()
            self.fills.poll()
            self.positions.publish()

    def recover(self, consumer_config: dict[str, Any]) -> None:
        """At start and on every partition assignment (:mod:`marketpipe.trader.recovery`)."""
        recover(self.ledger, self.counters, self.accounts, self.machine, consumer_config)


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


