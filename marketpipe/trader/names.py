"""Security names (证券名称) for ``/buy`` and ``/sale``, which the trade document lists as a
parameter: never sent empty.

From the reference file first (``MARKETPIPE_TRADER_REFERENCE``), else the latest ``name`` the
level-1 feed published on ``md.quote`` (jvQuant rows carry 证券名称), else none: the command is
rejected with rule ``unknown_name`` before anything is sent. :class:`Names` is the pure memory;
:class:`QuoteNames` the edge that reads ``md.quote`` (from a look-back window, then its tail).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)

#: how far back md.quote is read at start: a quote per symbol arrives every few seconds in trading
LOOKBACK_S = 15 * 60


class Names:
    def __init__(self, reference: Callable[[str], str]) -> None:
        self._reference = reference
        self.live: dict[str, str] = {}

    def learn(self, symbol: str, name: Any) -> None:
        if isinstance(name, str) and name.strip():
            self.live[symbol] = name.strip()

    def of(self, symbol: str) -> str:
        return (self._reference(symbol) or "").strip() or self.live.get(symbol, "")


class QuoteNames:
    """A non-blocking reader of md.quote that feeds :class:`Names` (no group, no commits)."""

    def __init__(self, client_config: Mapping[str, Any], topic: str, group_id: str,
                 decode: Callable[[bytes], Mapping[str, Any]], names: Names) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.names, self.decode = names, decode
        self.consumer = Consumer({**client_config, "group.id": group_id, "enable.auto.commit": False,
                                  "auto.offset.reset": "latest"})
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        since = int((time.time() - LOOKBACK_S) * 1000)
        starts = self.consumer.offsets_for_times([TopicPartition(topic, p, since) for p in parts], timeout=10)
        self.consumer.assign([tp if tp.offset >= 0 else TopicPartition(topic, tp.partition, -1) for tp in starts])

    def poll(self, budget: int = 500) -> None:
        for msg in self.consumer.consume(budget, timeout=0):
            if msg.error() or msg.value() is None:
                continue
            try:
                quote = self.decode(msg.value())
            except Exception as exc:  # a record we cannot read names nothing; never stops the trader
                log.debug("md.quote record skipped: %s", exc)
                continue
            self.names.learn(str(quote.get("symbol") or ""), quote.get("name"))

    def close(self) -> None:
        self.consumer.close()
