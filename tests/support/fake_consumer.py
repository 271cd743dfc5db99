"""A stand-in for confluent-kafka's ``Consumer`` that notes how long each read would have blocked:
``poll`` returns as soon as one record is there, ``consume(n, timeout)`` with fewer than ``n``
records queued waits out its whole timeout in librdkafka. For tests of readers whose arrival times
matter (the demo's tick latency, the order client's ``wait_for``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Message:
    payload: bytes
    topic_name: str

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self.topic_name

    def key(self) -> bytes | None:
        return None

    def value(self) -> bytes:
        return self.payload


@dataclass
class TimedConsumer:
    queued: list[Message]
    #: (call, the seconds librdkafka would have waited in it)
    waits: list[tuple[str, float]] = field(default_factory=list)

    def poll(self, timeout: float) -> Message | None:
        self.waits.append(("poll", 0.0 if self.queued else timeout))
        return self.queued.pop(0) if self.queued else None

    def consume(self, n: int, timeout: float) -> list[Message]:
        self.waits.append(("consume", timeout if len(self.queued) < n else 0.0))
        out, self.queued = self.queued[:n], self.queued[n:]
        return out

    def close(self) -> None:
        self.queued = []

    def blocked(self) -> float:
        """Seconds the reads would have waited in all, past the moment each found records queued."""
        return sum(wait for call, wait in self.waits if call == "consume")
