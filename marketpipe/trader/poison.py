"""Poison records: a record on order.commands that cannot be handled never stops the trader
and never stalls its partition.

Undecodable (rule ``undecodable``), a price outside the schema's decimal(18,3) (``price``), a
bad signature (``signature``) or any exception while handling one command (``unhandled``, with
the exception) ends as a REJECTED event with the rule and reason, is counted
(``marketpipe_trader_poison_records_total``) and its offset is committed. A record with no
readable command id gets the id ``<topic>/<partition>/<offset>``: stable, so a redelivery of the
same record yields the same event id.

Two exceptions: an exception after the ledger INTENT was written means the broker may have the
order, so the event is UNKNOWN and the INTENT is reconciled at the next start; and Kafka failing
our own writes is an outage, not a bad record: while it is only slow (a paused broker, a leader
moving) the trader waits and says so every 30 s, calling nobody; a write Kafka gave up on
(:class:`marketpipe.trader.ledger.NotAcknowledged`) stops the process in one line (nothing is
committed; the supervisor restarts it). :data:`OUTAGE` names those exceptions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from decimal import Decimal

from marketpipe.trader import metrics, rules
from marketpipe.trader.events import EventWriter
from marketpipe.trader.ledger import Entry, Ledger, NotAcknowledged
from marketpipe.trader.order_command import OrderCommand, RecordRef

log = logging.getLogger(__name__)

#: our own writes failing (Kafka gave up on one; the producer's queue is full): never a record's fault
OUTAGE = (NotAcknowledged, BufferError)


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


class PoisonPolicy:
    """Reports records that cannot be handled, and counts them; the caller commits their offsets."""

    def __init__(self, key: str, accounts: rules.Accounts, ledger: Ledger, events: EventWriter) -> None:
        self.key = key
        self.accounts = accounts
        self.ledger = ledger
        self.events = events
        self.count = 0  # records handled as poison since the start

    def reject(self, cmd: OrderCommand | Unreadable, rule: str, reason: str, received_ns: int,
               source: RecordRef | None) -> None:
        """REJECTED without a ledger entry, counted; the caller commits the offset."""
        self.count += 1
        metrics.POISON.labels(rule).inc()
        cmd = replace(cmd, account=self.accounts.public_name(cmd.account, self.key))  # as sent: maybe a number
        self.events.emit(None, cmd, "REJECTED", rule=rule, reason=reason, received_ns=received_ns, source=source)
        self.events.flush()

    def unhandled(self, progress: Progress, exc: Exception, received_ns: int, source: RecordRef | None) -> None:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        cmd: OrderCommand | Unreadable = progress.cmd or Unreadable(str(source or "unknown-record"))
        entry = progress.entry
        try:
            if entry is not None and entry.intent_ms and not entry.final:
                # the INTENT is durable and the broker may have the order: not a rejection
                self.count += 1
                metrics.POISON.labels("unhandled").inc()
                self.events.emit(entry, cmd, "UNKNOWN", rule="unhandled",
                                 reason=f"{reason}; the intent is reconciled with the broker at the next start",
                                 received_ns=received_ns)
                self.events.flush()
            elif entry is not None and progress.verified and not entry.final:
                self.count += 1
                metrics.POISON.labels("unhandled").inc()
                entry.state = "REJECTED"  # final in the ledger: a redelivery is not handled again
                self.events.emit(entry, cmd, "REJECTED", rule="unhandled", reason=reason, received_ns=received_ns)
                self.ledger.put(entry)
            else:
                self.reject(cmd, "unhandled", reason, received_ns, source)
        except OUTAGE:
            raise
        except Exception:  # even the report failed (e.g. a field no event can hold)
            log.exception("command at %s: rejection event could not be written either; skipped", source or "?")
