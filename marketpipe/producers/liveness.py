"""Liveness per subscription (pure, clock injected): which subscribed code of a connection has gone
silent while its market trades, and what the producer does about it.

A socket can stay up and answer pings while one subscription stops delivering ("connected but
mute"). The session's stall watch (marketpipe/producers/session.py) sees only the whole
connection; this watch sees each code the feed subscribed:

1. A code that has delivered (``min_samples`` frames, so a suspended or never-trading code that
   sends nothing at all is never acted on: silence is its normal state) and is then silent for
   longer than its limit while its market is open is **re-subscribed** on its connection.
   The limit is ``max(silence_seconds, factor × its usual interval)``; the usual interval is a
   moving average of the intervals between its frames while the market was open.
2. Still silent one more limit after the re-subscribe: the connection is **recycled** (closed and
   reopened through the session's reconnect path).
3. A code that stays silent across a recycle is only re-subscribed again, never recycled again,
   until it delivers: one mute code must not take the connection down every two limits when the
   cause is not the connection (a halted symbol, a provider that dropped it for good).

So, from a code's last frame, the re-subscribe comes within ``limit + check`` and the recycle
within ``2 × limit + 2 × check``, where ``check`` is ``check_seconds`` (0.5 s) plus the session's
receive timeout (0.5 s): the session calls :meth:`LivenessWatch.due` between frames. Silence
while the market is closed never counts: when it opens, every code's clock starts again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Iterable, Protocol


class Calendar(Protocol):
    def is_open_at(self, epoch_seconds: float) -> bool: ...


class Action(enum.Enum):
    """What the producer does; the value is the ``kind`` of the FeedStatus record on md.status."""

    RESUBSCRIBE = "resubscribed"
    RECYCLE = "recycled"


@dataclass(frozen=True)
class Verdict:
    action: Action
    code: str
    silent_seconds: float
    limit_seconds: float

    def reason(self) -> str:
        what = "re-subscribed" if self.action is Action.RESUBSCRIBE else "connection recycled"
        return f"{self.code} silent for {self.silent_seconds:.1f} s (limit {self.limit_seconds:.1f} s): {what}"


@dataclass
class _Code:
    last: float  # monotonic seconds of its latest frame (or of the session start / market open)
    interval: float = 0.0  # moving average of its intervals while open (s)
    samples: int = 0  # frames seen, all sessions
    resubscribed_at: float | None = None  # this silence's re-subscribe
    recycled: bool = False  # a recycle was spent on this silence


@dataclass
class LivenessWatch:
    """Per code of one connection: :meth:`seen` on every frame naming it, :meth:`due` on the clock."""

    codes: Iterable[str]
    calendar: Calendar
    silence_seconds: float
    factor: float = 5.0
    min_samples: int = 3
    max_interval_seconds: float = 300.0  # a longer pause is a break, not an interval
    #: how often :meth:`due` looks (it is called per frame of a busy socket; the calendar and the
    #: codes are not worth asking that often)
    check_seconds: float = 0.5
    subs: dict[str, _Code] = field(default_factory=dict, init=False)
    was_open: bool = field(default=False, init=False)
    checked_at: float = field(default=float("-inf"), init=False)

    def __post_init__(self) -> None:
        self.subs = {c: _Code(0.0) for c in self.codes}

    def start(self, now: float) -> None:
        """A new session subscribed everything: every code's silence counts from now. What was
        learned (intervals, samples) and the spent recycles are kept."""
        for sub in self.subs.values():
            sub.last, sub.resubscribed_at = now, None

    def seen(self, code: str, now: float) -> None:
        """A frame carried ``code``. Open or not is the last :meth:`due`'s answer (the calendar is
        asked on the clock, not per frame); a silence that was acted on is not a usual interval."""
        sub = self.subs.get(code)
        if sub is None:
            return
        gap = now - sub.last
        usual = sub.resubscribed_at is None and not sub.recycled
        if sub.samples and usual and 0 < gap <= self.max_interval_seconds and self.was_open:
            n = min(sub.samples, 20)  # a mean over the first 20, then a moving average
            sub.interval += (gap - sub.interval) / n
        sub.samples += 1
        sub.last, sub.resubscribed_at, sub.recycled = now, None, False

    def limit(self, code: str) -> float:
        return max(self.silence_seconds, self.factor * self.subs[code].interval)

    def due(self, now: float, wall: float) -> list[Verdict]:
        """The actions due now: re-subscribes (each returned once per silence and limit), or one
        recycle for the whole connection (then nothing else: the session ends)."""
        if now - self.checked_at < self.check_seconds:
            return []
        self.checked_at = now
        is_open = self.calendar.is_open_at(wall)
        if is_open and not self.was_open:
            for sub in self.subs.values():  # the closed market's silence does not count
                sub.last = max(sub.last, now)
                if sub.resubscribed_at is not None:
                    sub.resubscribed_at = max(sub.resubscribed_at, now)
        self.was_open = is_open
        if not is_open:
            return []
        out: list[Verdict] = []
        for code, sub in self.subs.items():
            if sub.samples < self.min_samples:
                continue
            limit = self.limit(code)
            if sub.resubscribed_at is None:
                if now - sub.last > limit:
                    sub.resubscribed_at = now
                    out.append(Verdict(Action.RESUBSCRIBE, code, now - sub.last, limit))
            elif now - sub.resubscribed_at > limit:
                if not sub.recycled:
                    sub.recycled, sub.resubscribed_at = True, now
                    return [Verdict(Action.RECYCLE, code, now - sub.last, limit)]
                sub.resubscribed_at = now  # recycled once already: keep asking, keep the socket
                out.append(Verdict(Action.RESUBSCRIBE, code, now - sub.last, limit))
        return out
