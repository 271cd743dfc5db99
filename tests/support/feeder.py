"""Raw frames onto a raw topic with the producer's header contract, without a producer process."""

from __future__ import annotations

import json
import time
import zlib

from confluent_kafka import Producer

from marketpipe import settings as settings_mod
from marketpipe.rawframe import RawMeta


def deflate(text: str) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(text.encode()) + c.flush()


class Feeder:
    def __init__(self, s: settings_mod.Settings) -> None:
        self.s = s
        self.producer = Producer(s.kafka.client_config())
        self.seq: dict[str, int] = {}

    def send(self, provider: str, connection: str, value: bytes, opcode: str = "text") -> None:
        self.seq[connection] = self.seq.get(connection, 0) + 1
        meta = RawMeta(provider, connection, self.seq[connection], 1, time.time_ns(), opcode, "data")
        self.producer.produce(self.s.topic(f"raw.{provider}"), key=connection.encode(), value=value,
                              headers=meta.headers())

    def trade(self, connection: str, symbol: str, price: float, t_ms: int, size: str = "0.5") -> None:
        frame = {"code": 10002, "data": {"p": str(price), "s": symbol, "t": t_ms, "td": 1, "v": size, "vw": "1"}}
        self.send("infoway", connection, json.dumps(frame).encode())

    def flush(self) -> None:
        assert self.producer.flush(30) == 0
