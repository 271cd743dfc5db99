"""The counter's order statuses (委托状态) and what they mean for our order states, in one table.

Sources: protocols.md §1.5 lists ``未报 已报 部成 已成 部撤 已撤``; ``废单`` (an order the exchange
or the counter refused after accepting it) is common at Chinese brokers and not seen in the
sources, so it is read but never relied on; the pending spellings ``待报 正报 已报待撤 部成待撤``
are the usual East Money counter texts for "on its way" and "cancel asked, not done yet".

States are ordered; an observation never moves an order backwards and the filled volume never
decreases (a list that shows less than we already reported is a stale answer, not a reversal).
An unknown spelling changes nothing and is counted
(``marketpipe_trader_unknown_order_status_total``), so a new counter text cannot end an order
by accident; the order keeps being polled.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter

PENDING, PARTIAL, FILLED, CANCELLED, REJECTED, UNKNOWN = (
    "PENDING", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "UNKNOWN")

UNKNOWN_STATUS = Counter("marketpipe_trader_unknown_order_status_total",
                         "Order statuses from /check_order the status table does not know, by spelling", ["status"])


@dataclass(frozen=True)
class Status:
    state: str  # one of the names above
    final: bool


#: 委托状态 → our state. PENDING is not an event: the order was SUBMITTED already.
TABLE: dict[str, Status] = {
    "未报": Status(PENDING, False),
    "待报": Status(PENDING, False),
    "正报": Status(PENDING, False),
    "已报": Status(PENDING, False),
    "已报待撤": Status(PENDING, False),
    "部成": Status(PARTIAL, False),
    "部成待撤": Status(PARTIAL, False),
    "已成": Status(FILLED, True),
    "已撤": Status(CANCELLED, True),
    "部撤": Status(CANCELLED, True),
    "废单": Status(REJECTED, True),
}
FINAL_SPELLINGS = frozenset(k for k, v in TABLE.items() if v.final)
#: how far along an order is; an observation of a lower rank is ignored
RANK = {PENDING: 0, PARTIAL: 1, FILLED: 2, CANCELLED: 2, REJECTED: 2}


def classify(status: str) -> Status:
    """The table's reading of one spelling; UNKNOWN (not final) for a spelling it does not hold."""
    return TABLE.get(status.strip(), Status(UNKNOWN, False))


def observe(status: str, deal_volume: int, volume: int) -> Status:
    """What one /check_order row says, fills included: a pending text with a fill is partial, a
    full fill is FILLED whatever the text (the counter may update the text after the volume)."""
    seen = classify(status)
    if seen.state == UNKNOWN:
        return seen
    if seen.state in (PENDING, PARTIAL) and volume and deal_volume >= volume:
        return Status(FILLED, True)
    if seen.state == PENDING and deal_volume > 0:
        return Status(PARTIAL, False)
    return seen


@dataclass(frozen=True)
class Step:
    """An event to emit: the state and the filled volume it carries."""

    state: str
    filled: int
    final: bool


def step(last_state: str, last_filled: int, status: str, deal_volume: int, volume: int) -> Step | None:
    """The next event for an order last reported as (``last_state``, ``last_filled``), or None.

    Monotonic: a lower rank or a smaller fill than reported is ignored (a stale list), and an
    observation equal to what was reported gives nothing, so each (state, filled) goes out once.
    A final text always ends the order, with the larger of the two fills."""
    seen = observe(status, deal_volume, volume)
    if seen.state == UNKNOWN:
        UNKNOWN_STATUS.labels(status.strip()[:20]).inc()
        return None
    filled = max(deal_volume, last_filled)
    if seen.state == PENDING:
        return None
    if RANK[seen.state] < RANK.get(last_state, 0):
        return None
    if seen.state == last_state and filled == last_filled:
        return None
    if seen.state == PARTIAL and filled <= last_filled:
        return None
    return Step(seen.state, filled, seen.final)
