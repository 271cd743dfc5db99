"""The command state machine: one order.commands record to at most one order at the counter.

For each command, in partition order:

1. decode (Avro OrderCommand, :mod:`marketpipe.trader.order_command`) → verify the HMAC signature
   → reject if expired;
2. idempotency: a command id already in the ledger is not acted on again; one left in
   ``INTENT`` by a crash is reconciled against the broker's order list first;
3. pre-trade checks (:mod:`marketpipe.trader.rules`), the kill switch included;
4. ledger ``INTENT`` written and flushed → broker call → ledger ``SUBMITTED``;
5. every state change is an ``OrderEvent`` on ``order.events`` (:mod:`marketpipe.trader.events`).

A broker call without a usable answer (dropped connection, timeout) is never retried
blindly: the order list decides — found: adopt its id; provably absent: send; otherwise
the command stays UNKNOWN (:func:`marketpipe.trader.reconcile.settle`). A record that cannot be
handled is reported by :mod:`marketpipe.trader.poison`, never raised.

Accounts: the trader serves one broker account (JVQUANT_TRADE_ACCOUNT). A command names it
by its number or by MARKETPIPE_TRADER_ACCOUNT_ALIAS; any other name is rejected (rule
``account``). Only the public name (the alias, else a keyed hash, see
:class:`marketpipe.trader.rules.Accounts`) is written to events, ledger, positions and logs. Daily
limits count per broker account.

Crash testing: ``MARKETPIPE_TRADER_CRASH_POINT=after_broker_accept`` makes the process
SIGKILL itself right after the broker accepted an order and before anything is recorded —
the worst moment, used by the tests to prove reconciliation.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, replace
from decimal import Decimal

from marketpipe.schemas.codec import Codec, CodecError
from marketpipe.trader import names, rules, signing
from marketpipe.trader.events import EventWriter, Subject
from marketpipe.trader.killswitch import KillSwitch
from marketpipe.trader.ledger import LAST_NOTE, PARKED, Entry, Ledger
from marketpipe.trader.order_command import OrderCommand, RecordRef, decode
from marketpipe.trader.poison import OUTAGE, PoisonPolicy, Progress, Unreadable
from marketpipe.trader.reconcile import Hooks, settle
from marketpipe.trader.trade_api import BrokerRejected, OutcomeUnknown, TradeApi

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    commit: bool = True  # False: leave the offset uncommitted (retry after restart)


@dataclass(frozen=True)
class Checks:
    """What a PLACE command is checked against before it may reach the counter."""

    key: str  # the signing key commands are verified with
    accounts: rules.Accounts
    reference: dict[str, rules.Reference]
    limits: rules.Limits
    counters: rules.Counters
    names: names.Names


class CommandMachine:
    """Drives each command from its record to a final (or parked) state, writing ledger and events."""

    def __init__(self, codec: Codec, checks: Checks, broker: TradeApi, ledger: Ledger, events: EventWriter,
                 switch: KillSwitch, poison: PoisonPolicy, *, poll_seconds: float, crash_point: str = "") -> None:
        self.codec = codec
        self.checks = checks
        self.broker = broker
        self.ledger = ledger
        self.events = events
        self.switch = switch
        self.poison = poison
        self.poll_seconds = poll_seconds
        self.crash_point = crash_point
        #: how long one command may hold its partition before it is parked
        self.settle_block_s = 10.0

    def unresolved_for(self, entry: Entry) -> Entry | None:
        """An unresolved (INTENT) command of the same account and symbol: it blocks new ones (fail closed;
        it also makes two same-fingerprint orders, which /check_order cannot tell apart, impossible)."""
        return next((e for e in self.ledger.unresolved()
                     if e.command_id != entry.command_id and e.account == entry.account and e.symbol == entry.symbol),
                    None)

    def handle(self, value: bytes, received_ns: int, source: RecordRef | None = None) -> Outcome:
        """Act on one order.commands record. Never raises for what is in the record (:mod:`marketpipe.trader.poison`)."""
        progress = Progress()
        try:
            return self._handle(value, received_ns, source, progress)
        except OUTAGE:
            raise  # our own writes fail: an outage, not this record's fault; stop without committing
        except Exception as exc:  # the poison-record policy: one record never kills the trader
            log.exception("command at %s could not be handled", source or "?")
            self.poison.unhandled(progress, exc, received_ns, source)
            return Outcome()

    def _handle(self, value: bytes, received_ns: int, source: RecordRef | None, progress: Progress) -> Outcome:
        try:
            cmd = decode(self.codec, value)
        except CodecError as exc:
            self.poison.reject(Unreadable(str(source or "unknown-record")), "undecodable", str(exc), received_ns, source)
            return Outcome()
        progress.cmd = cmd
        now_ms = int(time.time() * 1000)
        if cmd.price is not None:
            try:
                signing.exact_price(cmd.price)
            except ValueError as exc:
                self.poison.reject(cmd, "price", str(exc), received_ns, source)
                return Outcome()
        if not signing.verify(cmd.as_record(), self.checks.key):
            # no ledger entry: a forged command must not be able to block the genuine one
            self.poison.reject(cmd, "signature", "missing or invalid HMAC signature", received_ns, source)
            return Outcome()
        progress.verified = True
        entry = self.ledger.get(cmd.command_id)
        if entry is not None:
            if entry.state == "INTENT":
                progress.entry = entry
                return self.reconcile(entry, cmd, received_ns, resend=cmd.expires_at > now_ms)
            log.info("%s already %s: duplicate delivery ignored", cmd.command_id, entry.state)
            return Outcome()
        served = self.checks.accounts.resolve(cmd.account)
        # the public name from here on
        cmd = replace(cmd, account=served or self.checks.accounts.public_name(cmd.account, self.checks.key))
        progress.cmd = cmd
        entry = Entry(cmd.command_id, cmd.account, cmd.action, cmd.symbol, "ACCEPTED",
                      side=cmd.side, price=str(cmd.price) if cmd.price is not None else None,
                      volume=int(cmd.volume or 0), expires_at=int(cmd.expires_at))
        progress.entry = entry
        if cmd.expires_at < now_ms:
            return self.reject(entry, cmd, "expired", f"expired {now_ms - cmd.expires_at} ms ago", received_ns)
        if served is None:
            return self.reject(entry, cmd, "account", f"account {cmd.account} is not served by this trader "
                               f"(it serves {self.checks.accounts.public})", received_ns)
        if cmd.action == "CANCEL":
            return self.cancel(entry, cmd, received_ns)
        ref = self.checks.reference.get(cmd.symbol)
        rejection = rules.check_place(cmd.as_record(), self.checks.limits, ref, self.checks.counters, rules.day_of(now_ms),
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
        if not self.checks.names.of(cmd.symbol):
            return self.reject(entry, cmd, "unknown_name", f"no security name (证券名称) for {cmd.symbol} in the "
                               "reference file nor on md.quote: /buy and /sale need it", received_ns)
        self.events.emit(entry, cmd, "ACCEPTED", received_ns=received_ns)
        return self.submit(entry, cmd, ref, received_ns)

    def reject(self, entry: Entry, cmd: Subject, rule: str, reason: str, received_ns: int) -> Outcome:
        entry.state = "REJECTED"
        self.events.emit(entry, cmd, "REJECTED", rule=rule, reason=reason, received_ns=received_ns)
        self.ledger.put(entry)  # flushes the event too
        return Outcome()

    def submit(self, entry: Entry, cmd: OrderCommand, ref: rules.Reference | None, received_ns: int) -> Outcome:
        price = Decimal(cmd.price or 0)  # check_place refused a command without a positive price
        entry.state, entry.intent_ms = "INTENT", int(time.time() * 1000)
        entry.notional = str(price * entry.volume)
        self.checks.counters.record(entry.account, entry.intent_ms // 86_400_000, price * entry.volume, time.monotonic())
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
        name = self.checks.names.of(cmd.symbol)

        def note(reason: str) -> None:
            if entry.extra.get(LAST_NOTE) == reason:
                return  # a parked command asked again: said once
            entry.extra[LAST_NOTE] = reason
            self.events.emit(entry, cmd, "UNKNOWN", reason=reason, received_ns=received_ns)
            self.events.flush()

        settled = settle(self.broker, entry, name,
                         Hooks(record=lambda: self.ledger.put(entry), note=note, halted=self.switch.halted_now),
                         self.ledger.claimed_order_ids, send_first=send_first, may_send=resend and bool(name),
                         poll_s=min(1.0, self.poll_seconds),
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
                           block_s=min(1.0, self.poll_seconds))

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
