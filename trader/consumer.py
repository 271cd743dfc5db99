"""``marketpipe trade``: order commands from Kafka to the jvQuant trade API, at most once.

For each command, in partition order:

1. decode (Avro OrderCommand) → verify the HMAC signature → reject if expired;
2. idempotency: a command id already in the ledger is not acted on again; one left in
   ``INTENT`` by a crash is reconciled against the broker's order list first;
3. pre-trade checks (:mod:`trader.rules`), the kill switch included;
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
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from marketpipe import topics
from marketpipe.settings import Settings
from trader import metrics, rules, signing
from trader.broker import BrokerRejected, JvQuantBroker, OutcomeUnknown
from trader.ledger import Entry, Ledger
from trader.reconcile import Hooks, settle

log = logging.getLogger(__name__)

KILL_SWITCH_KEY = b"kill_switch"
CRASH_POINT_ENV = "MARKETPIPE_TRADER_CRASH_POINT"


def load_reference(path: str) -> dict[str, rules.Reference]:
    if not path:
        return {}
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return {sym: rules.Reference(Decimal(str(v["prev_close"])) if v.get("prev_close") is not None else None,
                                 v.get("name", ""), bool(v.get("st", False))) for sym, v in raw.items()}


def limits_from(settings: Settings) -> rules.Limits:
    t = settings.trader
    return rules.Limits(allow=frozenset(t.allow), max_order_notional=Decimal(t.max_order_notional),
                        max_daily_notional=Decimal(t.max_daily_notional),
                        max_orders_per_second=t.max_orders_per_second)


@dataclass
class Outcome:
    commit: bool = True  # False: leave the offset uncommitted (retry after restart)


class Trader:
    def __init__(self, settings: Settings, broker: JvQuantBroker, reference: dict[str, rules.Reference],
                 limits: rules.Limits) -> None:
        from confluent_kafka import Producer

        from schemas import codec

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
        self.codec = codec.from_settings(settings)
        self.encode_event = self.codec.encoder("OrderEvent", settings.topic(topics.ORDER_EVENTS))
        self.producer = Producer({**settings.kafka.client_config(), "enable.idempotence": True, "acks": "all",
                                  "linger.ms": 2})
        self.ledger = Ledger(self.producer, settings.topic(topics.ORDER_LEDGER))
        self.halted = False
        self.halt_reason = ""
        self.crash_point = os.environ.get(CRASH_POINT_ENV, "")
        self.last_poll = 0.0

    # ---- events -----------------------------------------------------------------------------
    def emit(self, entry: Entry | None, cmd: dict[str, Any], state: str, *, rule: str | None = None,
             reason: str | None = None, broker_order_id: str | None = None, filled: int = 0,
             avg_price: Decimal | None = None, received_ns: int = 0) -> None:
        if entry is not None:
            entry.events += 1
            seq = entry.events
        else:  # a command with no ledger entry (bad signature): one event, id by time
            seq = time.time_ns()
        price = cmd.get("price")
        record = {
            "event_id": f"{cmd['command_id']}:{seq}", "command_id": cmd["command_id"], "account": cmd["account"],
            "provider": "jvquant", "state": state, "rule": rule, "reason": reason,
            "broker_order_id": broker_order_id, "symbol": cmd["symbol"], "side": cmd.get("side"),
            "price": Decimal(price).quantize(signing.SCALE) if price is not None else None,
            "volume": int(cmd.get("volume") or 0), "filled_volume": filled,
            "avg_fill_price": avg_price.quantize(signing.SCALE) if avg_price is not None else None,
            "event_time": int(time.time() * 1000), "receive_time_ns": received_ns,
        }
        self.producer.produce(self.settings.topic(topics.ORDER_EVENTS), key=cmd["command_id"].encode(),
                              value=self.encode_event(record), timestamp=record["event_time"])
        metrics.EVENTS.labels(state).inc()
        if rule:
            metrics.REJECTIONS.labels(rule).inc()
        log.info("%s %s%s", cmd["command_id"], state, f" ({rule}: {reason})" if rule else
                 f" ({reason})" if reason else "")

    def flush(self) -> None:
        if self.producer.flush(30):
            raise RuntimeError("order events not acknowledged by Kafka in 30 s")

    # ---- kill switch --------------------------------------------------------------------------
    def on_control(self, key: bytes | None, value: bytes | None) -> None:
        if key != KILL_SWITCH_KEY:
            return
        state = json.loads(value) if value else {"halted": False}
        self.halted = bool(state.get("halted"))
        self.halt_reason = str(state.get("reason", ""))
        metrics.HALTED.set(1 if self.halted else 0)
        log.warning("kill switch %s%s", "ON: new orders halted" if self.halted else "off",
                    f" ({self.halt_reason})" if self.halt_reason else "")

    # ---- commands -----------------------------------------------------------------------------
    def handle(self, value: bytes, received_ns: int) -> Outcome:
        from schemas.codec import CodecError

        try:
            cmd = self.codec.decode(value, expect="OrderCommand").record
        except CodecError as exc:
            log.error("undecodable order command skipped: %s", exc)
            return Outcome()
        now_ms = int(time.time() * 1000)
        if not signing.verify(cmd, self.key):
            # no ledger entry: a forged command must not be able to block the genuine one
            self.emit(None, cmd, "REJECTED", rule="signature", reason="missing or invalid HMAC signature",
                      received_ns=received_ns)
            self.flush()
            return Outcome()
        entry = self.ledger.get(cmd["command_id"])
        if entry is not None:
            if entry.state == "INTENT":
                return self.reconcile(entry, cmd, received_ns, resend=cmd["expires_at"] > now_ms)
            log.info("%s already %s: duplicate delivery ignored", cmd["command_id"], entry.state)
            return Outcome()
        entry = Entry(cmd["command_id"], cmd["account"], cmd["action"], cmd["symbol"], "ACCEPTED",
                      side=cmd.get("side"), price=str(cmd["price"]) if cmd.get("price") is not None else None,
                      volume=int(cmd.get("volume") or 0), expires_at=int(cmd["expires_at"]))
        if cmd["expires_at"] < now_ms:
            return self.reject(entry, cmd, "expired", f"expired {now_ms - cmd['expires_at']} ms ago", received_ns)
        if cmd["action"] == "CANCEL":
            return self.cancel(entry, cmd, received_ns)
        ref = self.reference.get(cmd["symbol"])
        day = now_ms // 86_400_000
        rejection = rules.check_place(cmd, self.limits, ref, self.counters, day, time.monotonic(), self.halted)
        if rejection is not None:
            return self.reject(entry, cmd, rejection.rule, rejection.reason, received_ns)
        self.emit(entry, cmd, "ACCEPTED", received_ns=received_ns)
        return self.submit(entry, cmd, ref, received_ns)

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
                  send_first: bool = False) -> Outcome:
        """Send (``send_first``) and/or resolve an INTENT whose broker call may have happened.

        See :func:`trader.reconcile.settle`: an order is sent at most once; one that provably never
        reached the broker is sent while ``resend`` (the command has not expired) holds.
        """
        ref = self.reference.get(cmd["symbol"])

        def note(reason: str) -> None:
            self.emit(entry, cmd, "UNKNOWN", reason=reason, received_ns=received_ns)
            self.flush()

        settled = settle(self.broker, entry, ref.name if ref else "",
                         Hooks(record=lambda: self.ledger.put(entry), note=note), self.ledger.claimed_order_ids,
                         send_first=send_first, may_send=resend, poll_s=min(1.0, self.settings.trader.poll_seconds))
        if settled.state == "PENDING":
            log.warning("%s still unresolved (%s): kept INTENT, asking again", entry.command_id, settled.reason)
            return Outcome(commit=False)
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
            if entry is None or (order.deal_volume == entry.filled_volume and order.status == entry.broker_status):
                continue
            cmd = {"command_id": entry.command_id, "account": entry.account, "symbol": entry.symbol,
                   "side": entry.side, "price": entry.price, "volume": entry.volume}
            if order.status in ("已撤", "部撤"):
                state = "CANCELLED"
            elif order.deal_volume >= order.volume and order.volume:
                state = "FILLED"
            elif order.deal_volume > entry.filled_volume:
                state = "PARTIALLY_FILLED"
            else:
                entry.broker_status = order.status
                continue
            entry.filled_volume, entry.broker_status = order.deal_volume, order.status
            if order.final:
                entry.state = "DONE"
            self.emit(entry, cmd, state, broker_order_id=order.order_id, filled=order.deal_volume,
                      avg_price=order.deal_price if order.deal_volume else None, reason=order.status)
            self.ledger.put(entry, flush=False)
        self.flush()

    def publish_positions(self) -> None:
        try:
            hold = self.broker.positions()
        except (OutcomeUnknown, BrokerRejected) as exc:
            log.warning("position poll failed: %s", exc)
            return
        topic = self.settings.topic(topics.ORDER_POSITIONS)
        now_ms = int(time.time() * 1000)
        for row in hold.get("hold_list") or []:
            value = {"account": self.broker.account, "code": row.get("code"), "name": row.get("name"),
                     "hold_vol": row.get("hold_vol"), "usable_vol": row.get("usable_vol"), "at_ms": now_ms}
            self.producer.produce(topic, key=f"{self.broker.account}:{row.get('code')}".encode(),
                                  value=json.dumps(value, ensure_ascii=False).encode())
        self.producer.poll(0)

    def maybe_poll(self) -> None:
        now = time.monotonic()
        if now - self.last_poll >= self.settings.trader.poll_seconds:
            self.last_poll = now
            self.poll_broker()
            self.publish_positions()

    # ---- startup ------------------------------------------------------------------------------
    def recover(self, consumer_config: dict[str, Any]) -> None:
        self.ledger.load(consumer_config)
        for entry in self.ledger.unresolved():
            cmd = {"command_id": entry.command_id, "account": entry.account, "symbol": entry.symbol,
                   "side": entry.side, "price": entry.price, "volume": entry.volume, "action": entry.action}
            log.warning("%s was INTENT at the last stop: reconciling", entry.command_id)
            self.reconcile(entry, cmd, 0, resend=entry.expires_at > int(time.time() * 1000))


def run_loop(trader: Trader, stop: dict[str, bool], idle_exit: float | None = None) -> None:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    s = trader.settings
    base = s.kafka.client_config()
    trader.recover(base)
    control = Consumer({**base, "group.id": "marketpipe-trader-control", "enable.auto.commit": False})
    control_topic = s.topic(topics.ORDER_CONTROL)
    md = control.list_topics(control_topic, timeout=15).topics[control_topic]
    control.assign([TopicPartition(control_topic, p, OFFSET_BEGINNING) for p in md.partitions])
    commands = Consumer({**base, "group.id": "marketpipe-trader", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})

    def on_assign(consumer: Any, partitions: list[Any]) -> None:
        # another instance may have written the ledger since we read it: read it again
        trader.recover(base)

    commands.subscribe([s.topic(topics.ORDER_COMMANDS)], on_assign=on_assign)
    log.info("trader ready: consuming %s", s.topic(topics.ORDER_COMMANDS))
    last_msg = time.monotonic()
    try:
        while not stop["now"]:
            for msg in control.consume(100, timeout=0):
                if not msg.error():
                    trader.on_control(msg.key(), msg.value())
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
            outcome = trader.handle(msg.value() or b"", time.time_ns())
            trader.flush()
            if outcome.commit:
                try:
                    commands.commit(message=msg, asynchronous=False)
                except KafkaException as exc:
                    log.warning("offset commit failed (the command will be seen again and deduplicated): %s", exc)
            else:
                # leave the offset; rewind so the command is retried after a pause
                commands.seek(msg)
                time.sleep(1.0)
    finally:
        commands.close()
        control.close()
        trader.flush()


def build(settings: Settings, reference_path: str | None = None) -> Trader:
    p = settings.providers
    if not p.jvquant_token:
        raise SystemExit("marketpipe trade: JVQUANT_TOKEN is not set")
    if not p.jvquant_trade_account or not p.jvquant_trade_password:
        raise SystemExit("marketpipe trade: JVQUANT_TRADE_ACCOUNT and JVQUANT_TRADE_PASSWORD must be set")
    broker = JvQuantBroker(p.jvquant_base_url, p.jvquant_token.reveal(), p.jvquant_trade_account.reveal(),
                           p.jvquant_trade_password.reveal())
    reference = load_reference(reference_path or settings.trader.reference)
    if not reference:
        log.warning("no reference data (MARKETPIPE_TRADER_REFERENCE): every order will fail the price-band rule")
    return Trader(settings, broker, reference, limits_from(settings))


