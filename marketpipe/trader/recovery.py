"""Startup and every rebalance: the ledger read again, the day's usage rebuilt, INTENTs reconciled.

Daily limits count per broker account and are rebuilt from the ledger at every (re)start: every
order the account sent today counts, whichever process sent it. A command left ``INTENT`` by a
crash may be at the broker: it is reconciled against the broker's order list, never resent blindly.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

from marketpipe.trader import rules
from marketpipe.trader.ledger import Ledger
from marketpipe.trader.machine import CommandMachine

log = logging.getLogger(__name__)


def recover(ledger: Ledger, counters: rules.Counters, accounts: rules.Accounts, machine: CommandMachine,
            consumer_config: dict[str, Any]) -> None:
    ledger.load(consumer_config)
    # every order this broker account sent today counts, whichever process sent it
    counters.rebuild(ledger.entries.values(), accounts.public)
    today = (accounts.public, rules.day_of(int(time.time() * 1000)))
    log.info("daily usage of %s from the ledger: %s notional in %d orders", accounts.public,
             counters.daily_notional.get(today, Decimal(0)), counters.daily_orders.get(today, 0))
    for entry in ledger.unresolved():
        log.warning("%s was INTENT at the last stop: reconciling", entry.command_id)
        machine.reconcile(entry, entry, 0, resend=entry.expires_at > int(time.time() * 1000))
