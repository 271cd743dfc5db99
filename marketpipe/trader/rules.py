"""Pre-trade checks: pure functions over a command, limits, reference data and counters.

Every check returns ``None`` (pass) or a :class:`Rejection` naming the rule, so an
``order.events`` REJECTED record always says which rule failed. The A-share rules follow
protocols.md §5:

=============================  ==============================  ===============  ============
board                          buy lot                          tick             daily band
=============================  ==============================  ===============  ============
SH/SZ main board stock         multiples of 100                 0.01             ±10% (ST ±5%)
ChiNext (300/301)              multiples of 100                 0.01             ±20%
STAR (688/689)                 >= 200, then steps of 1          0.01             ±20%
Beijing (4xx/8xx/92x)          >= 100, then steps of 1          0.01             ±30%
ETF / fund (5xx SH, 15x/16x)   multiples of 100                 0.001            ±10%
convertible bond               multiples of 10                  0.001            ±20%
=============================  ==============================  ===============  ============

Sells may be odd lots (the remainder of a position); the band is prev_close × (1 ± pct)
rounded half-up to the tick. A symbol without a known previous close fails the band rule:
an order is never waved through because its limit is unknown.

Daily limits count per **broker account** (the one the orders really go to), never per the
free-text ``account`` of a command: a command names a served account by its number or its
alias (:class:`Accounts`), anything else is rejected. Daily usage is rebuilt from the ledger
at start (:meth:`Counters.rebuild`), so a restart never resets a cap.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterable, Mapping

from marketpipe.trader import signing
from marketpipe.trader.ledger import Entry


@dataclass(frozen=True)
class Rejection:
    rule: str
    reason: str


@dataclass(frozen=True)
class Board:
    name: str
    tick: Decimal
    band: Decimal  # fraction, 0.10 = ±10%
    lot: int  # buy multiple
    min_buy: int  # smallest buy
    step: int  # increment above min_buy


def board_of(symbol: str, st: bool = False) -> Board:
    code, _, exch = symbol.partition(".")
    if exch not in ("SH", "SZ", "BJ") or len(code) != 6 or not code.isdigit():
        raise ValueError(f"{symbol}: not an A-share symbol (the jvQuant trade API is A-shares only)")
    cent, mill = Decimal("0.01"), Decimal("0.001")
    if exch == "BJ":
        return Board("beijing", cent, Decimal("0.30"), 1, 100, 1)
    if code.startswith(("688", "689")):
        return Board("star", cent, Decimal("0.20"), 1, 200, 1)
    if code.startswith(("300", "301")):
        return Board("chinext", cent, Decimal("0.20"), 100, 100, 100)
    if (exch == "SH" and code.startswith("11")) or (exch == "SZ" and code.startswith("12")):
        return Board("convertible_bond", mill, Decimal("0.20"), 10, 10, 10)
    if (exch == "SH" and code.startswith("5")) or (exch == "SZ" and code.startswith(("15", "16"))):
        return Board("fund", mill, Decimal("0.10"), 100, 100, 100)
    return Board("main_st" if st else "main", cent, Decimal("0.05") if st else Decimal("0.10"), 100, 100, 100)


def price_limits(prev_close: Decimal, board: Board) -> tuple[Decimal, Decimal]:
    down = (prev_close * (1 - board.band)).quantize(board.tick, rounding=ROUND_HALF_UP)
    up = (prev_close * (1 + board.band)).quantize(board.tick, rounding=ROUND_HALF_UP)
    return down, up


@dataclass(frozen=True)
class Reference:
    """What the checks need to know about one symbol."""

    prev_close: Decimal | None
    name: str = ""
    st: bool = False


@dataclass(frozen=True)
class Limits:
    allow: frozenset[str] = frozenset()  # empty = every A-share symbol allowed
    max_order_notional: Decimal = Decimal("1000000")
    max_daily_notional: Decimal = Decimal("5000000")
    max_orders_per_second: int = 5  # well below the exchanges' high-frequency thresholds (300/s, 20000/day)
    max_order_volume: int = 1_000_000
    max_daily_orders: int = 10_000


@dataclass(frozen=True)
class Accounts:
    """The broker account a trader serves, by every name a command may give it.

    ``public`` is the only name that leaves the process (events, ledger, positions, logs):
    the configured alias, else :func:`marketpipe.trader.signing.account_tag` of the number.
    """

    public: str
    names: frozenset[str]

    @classmethod
    def serving(cls, number: str, alias: str, key: str) -> "Accounts":
        public = alias or signing.account_tag(number, key)
        return cls(public, frozenset({number, public}))

    def resolve(self, name: str) -> str | None:
        return self.public if name in self.names else None

    def public_name(self, name: Any, key: str) -> str:
        """The name an account may have outside this process (never a number in clear)."""
        name = str(name or "")
        return (self.resolve(name) or signing.account_tag(name, key)) if name else ""


def day_of(epoch_ms: int) -> int:
    return epoch_ms // 86_400_000


@dataclass
class Counters:
    """Per-account usage the limits are checked against (kept by the trade consumer)."""

    daily_notional: dict[tuple[str, int], Decimal] = field(default_factory=dict)  # (account, day) -> sum
    daily_orders: dict[tuple[str, int], int] = field(default_factory=dict)  # (account, day) -> orders sent
    recent: deque[float] = field(default_factory=deque)  # submit times (monotonic seconds)

    def record(self, account: str, day: int, notional: Decimal, now: float) -> None:
        key = (account, day)
        self.daily_notional[key] = self.daily_notional.get(key, Decimal(0)) + notional
        self.daily_orders[key] = self.daily_orders.get(key, 0) + 1
        self.recent.append(now)

    def rebuild(self, entries: Iterable[Entry], account: str) -> None:
        """Daily usage from the ledger, every PLACE that got as far as its broker call.

        All of them went to the one broker account this trader serves, whatever name the
        entry carries (entries written before names were resolved hold the command's free
        text). Counted like :meth:`record` counts: at the intent, so an order the broker
        refused still counts (conservative, and the same before and after a restart).
        The per-second window is kept: it is about this process's own sending.
        """
        self.daily_notional, self.daily_orders = {}, {}
        for entry in entries:
            if entry.action != "PLACE" or not entry.intent_ms:
                continue
            key = (account, day_of(entry.intent_ms))
            self.daily_notional[key] = self.daily_notional.get(key, Decimal(0)) + Decimal(entry.notional or 0)
            self.daily_orders[key] = self.daily_orders.get(key, 0) + 1


def check_place(cmd: Mapping[str, Any], limits: Limits, ref: Reference | None, counters: Counters,
                day: int, now: float, halted: bool) -> Rejection | None:
    """All checks for a PLACE command, cheapest and most fundamental first.

    ``cmd["account"]`` is the served account's public name (see :class:`Accounts`)."""
    if halted:
        return Rejection("kill_switch", "trading is halted by the kill switch")
    symbol = cmd["symbol"]
    if limits.allow and symbol not in limits.allow:
        return Rejection("allow_list", f"{symbol} is not in the allow-list")
    try:
        board = board_of(symbol, ref.st if ref else False)
    except ValueError as exc:
        return Rejection("symbol", str(exc))
    side, volume, price = cmd.get("side"), int(cmd.get("volume") or 0), cmd.get("price")
    if side not in ("BUY", "SELL"):
        return Rejection("side", f"side must be BUY or SELL, got {side!r}")
    if price is None or Decimal(price) <= 0:
        return Rejection("price", "a positive limit price is required")
    price = Decimal(price)
    if volume <= 0 or volume > limits.max_order_volume:
        return Rejection("volume", f"volume {volume} outside 1..{limits.max_order_volume}")
    if side == "BUY":
        if volume < board.min_buy or (volume - board.min_buy) % board.step or \
                (board.lot > 1 and volume % board.lot):
            rule = (f"multiples of {board.lot}" if board.lot > 1 else
                    f"at least {board.min_buy}, then steps of {board.step}")
            return Rejection("lot_size", f"{board.name} buy volume {volume}: {rule}")
    if price % board.tick:
        return Rejection("price_tick", f"price {price} is not a multiple of the {board.tick} tick ({board.name})")
    if ref is None or ref.prev_close is None:
        return Rejection("price_band", f"no previous close known for {symbol}: cannot check the daily band")
    down, up = price_limits(ref.prev_close, board)
    if not down <= price <= up:
        return Rejection("price_band", f"price {price} outside today's band {down}..{up} "
                                       f"(prev close {ref.prev_close}, ±{board.band * 100:.0f}%)")
    notional = price * volume
    if notional > limits.max_order_notional:
        return Rejection("max_order_notional", f"notional {notional} > {limits.max_order_notional}")
    used = counters.daily_notional.get((cmd["account"], day), Decimal(0))
    if used + notional > limits.max_daily_notional:
        return Rejection("max_daily_notional", f"today's notional {used} + {notional} > {limits.max_daily_notional}")
    sent = counters.daily_orders.get((cmd["account"], day), 0)
    if sent >= limits.max_daily_orders:
        return Rejection("max_daily_orders", f"{sent} orders sent today: the limit is {limits.max_daily_orders}")
    while counters.recent and counters.recent[0] < now - 1.0:
        counters.recent.popleft()
    if len(counters.recent) >= limits.max_orders_per_second:
        return Rejection("max_orders_per_second", f"more than {limits.max_orders_per_second} orders in one second")
    return None
