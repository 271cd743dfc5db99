"""A/B arbitration: of a record received on both lines of a connection, the first copy wins.

Two producers (``marketpipe produce ... --line A`` and ``--line B``) write one logical connection's
frames to the same key, so both lines share a partition and the processor reads their frames in
one order; a replay after a restart reads the same order, so the same copy wins again.

A record is known by its **content identity** (the provider's, from its registry entry: jvQuant's
level-2 trade number, ...); the two copies differ only in receive time and ``source``. The arbiter
keeps, per key, the identities of a bounded recent window: older than ``window_ms`` (receive time)
or beyond ``max_per_key``, an identity is forgotten and a copy that late is published again.

A repeat on the *same* line is the provider's own (jvQuant sending a frame twice): it is published
as it is without A/B, and the feed monitor reports it as ``duplicate``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Hashable


@dataclass
class _Seen:
    line: str
    at_ms: int


@dataclass
class Arbiter:
    window_ms: int = 60_000
    max_per_key: int = 200_000
    #: key (connection id) -> identity -> the line that delivered it first, and when; oldest first
    seen: dict[str, OrderedDict[Hashable, _Seen]] = field(default_factory=dict)
    #: second copies dropped so far
    dropped: int = 0

    def first(self, key: str, identity: Hashable, line: str, at_ms: int) -> bool:
        """True when this copy is to be published: the identity is new in the window, or came by the
        same line before; False (and counted) for the other line's copy of a record published already."""
        known = self.seen.get(key)
        if known is None:
            known = self.seen[key] = OrderedDict()
        self._expire(known, at_ms)
        prior = known.get(identity)
        if prior is None:
            known[identity] = _Seen(line, at_ms)
            if len(known) > self.max_per_key:
                known.popitem(last=False)
            return True
        if prior.line == line:
            return True
        self.dropped += 1
        return False

    def _expire(self, known: OrderedDict[Hashable, _Seen], at_ms: int) -> None:
        # insertion order is receive order up to the two lines' skew, which the window dwarfs
        horizon = at_ms - self.window_ms
        while known:
            oldest = next(iter(known.values()))
            if oldest.at_ms >= horizon:
                return
            known.popitem(last=False)
