"""Waiting for Kafka to acknowledge a producer's records, and noticing the records it never will.

librdkafka drops a record whose delivery failed (its ``message.timeout.ms`` ran out, or the
broker refused it: too large, not authorized) from its queue and tells only the delivery
callback: ``flush()`` then returns 0, exactly as for a written record. So every producer whose
writes must be durable before it moves on (the processor before it acknowledges offsets, the
trader before it calls the counter) counts failures with :class:`Deliveries` and waits with
:func:`wait_acknowledged`.

Records that are only slow (a paused broker, a leader moving, a partition below
``min.insync.replicas``) are waited for, with a log line every ``step`` seconds: exiting would
not write them sooner, and a restarted process would wait for the same broker. The wait ends
when they are written, or when the producer gives them up (``message.timeout.ms``, 5 minutes by
default), which is a failure like any other.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable


class Deliveries:
    """A producer's ``on_delivery`` callback that counts the records Kafka did not take.

    Thread-safe: the callback runs on whichever thread polls or flushes the producer."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self._lock = threading.Lock()
        self._failed = 0
        self._error = ""
        self._log = log

    def __call__(self, err: Any, msg: Any) -> None:
        if err is None:
            return
        with self._lock:
            self._failed += 1
            self._error = str(err)
        if self._log is not None:
            self._log.error("record for %s key %s NOT written: %s", msg.topic(), msg.key(), err)

    def take(self) -> tuple[int, str]:
        """Failures since the last call, and the last error's text."""
        with self._lock:
            failed, error, self._failed, self._error = self._failed, self._error, 0, ""
        return failed, error


@dataclass(frozen=True)
class Unwritten:
    """What a wait could not make durable."""

    remaining: int  # still queued or in flight when the wait ended
    failed: int  # given up by the producer: never written
    error: str = ""

    def __str__(self) -> str:
        why = f" ({self.error})" if self.error else ""
        return f"{self.remaining} records unacknowledged and {self.failed} refused by Kafka{why}"


def wait_acknowledged(flush: Callable[[float], int], deliveries: Deliveries, what: str, log: logging.Logger,
                      step: float = 30.0, limit: float | None = None) -> Unwritten | None:
    """Flush until every record is acknowledged (None), a record failed, or ``limit`` seconds passed
    (an :class:`Unwritten`). ``flush`` is the producer's ``flush(timeout) -> records left``."""
    started = time.monotonic()
    while True:
        remaining = flush(step if limit is None else max(0.0, min(step, limit - (time.monotonic() - started))))
        failed, error = deliveries.take()
        if failed:
            return Unwritten(remaining, failed, error)
        if not remaining:
            return None
        waited = time.monotonic() - started
        if limit is not None and waited >= limit:
            return Unwritten(remaining, 0)
        log.warning("%s: Kafka has not acknowledged %d records after %.0f s; waiting for it (nothing moves on "
                    "until they are written)", what, remaining, waited)


def write_one(producer: Any, topic: str, key: bytes, value: bytes, what: str, log: logging.Logger,
              limit: float = 30.0, **produce: Any) -> None:
    """Produce one record and return once Kafka has it; RuntimeError naming ``what`` when it refused it
    or did not acknowledge it within ``limit`` seconds (the one-shot commands: send, halt, resolve)."""
    deliveries = Deliveries()
    producer.produce(topic, key=key, value=value, on_delivery=deliveries, **produce)
    unwritten = wait_acknowledged(producer.flush, deliveries, what, log, limit=limit)
    if unwritten:
        raise RuntimeError(f"{what} not written by Kafka: {unwritten}")
