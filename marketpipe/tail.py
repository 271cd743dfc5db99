"""Reading any topic marketpipe writes and printing its records readably or as JSON: the
library of ``marketpipe tail`` (:func:`tail` and :class:`Printer`), and the time format other
commands print with (:func:`iso_ms`).

Avro records of either framing are decoded with the codec (order.ledger and order.positions
too; their JSON values of earlier versions are shown as they are); raw provider frames are shown
with their headers and a text preview (binary frames as a hex prefix). :func:`tail` never joins
a consumer group's committed offsets: it assigns partitions directly, so it cannot disturb the
pipeline's own consumers.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
import time
from decimal import Decimal
from typing import Any, Callable, TextIO

from marketpipe.rawframe import header_dict
from marketpipe.settings import Settings

#: Fields printed first in the readable form, when a record has them.
LEAD_FIELDS = ("provider", "symbol", "code", "account", "state", "rule", "reason", "price", "size", "last", "open", "high", "low",
               "close", "volume", "interval_volume", "trade_count", "revision", "side", "command_id", "broker_order_id",
               "hold_vol", "usable_vol")


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def iso_ms(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _compact(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e15 else repr(value)
    if isinstance(value, list):
        return "[" + " ".join(f"{lv['price']:g}x{lv['size']:g}" if isinstance(lv, dict) and "price" in lv
                              else _compact(lv) for lv in value[:3]) + (" …]" if len(value) > 3 else "]")
    return str(value)


def readable(topic: str, schema: str, record: dict[str, Any]) -> str:
    when = iso_ms(record["event_time"]) if isinstance(record.get("event_time"), int) else "-"
    parts = [f"{k}={_compact(record[k])}" for k in LEAD_FIELDS if record.get(k) not in (None, "")]
    for key in ("bids", "asks"):
        if record.get(key):
            parts.append(f"{key}={_compact(record[key])}")
    return f"{when} {topic} {schema} " + " ".join(parts)


def describe_raw(value: bytes, headers: dict[str, str]) -> dict[str, Any]:
    if headers.get("opcode") == "text":
        preview = value[:160].decode("utf-8", "replace")
    else:
        preview = value[:32].hex() + ("…" if len(value) > 32 else "")
    return {"headers": headers, "bytes": len(value), "preview": preview}


class Printer:
    def __init__(self, codec: Any, as_json: bool, symbol: str | None, out: TextIO = sys.stdout) -> None:
        self.codec = codec
        self.as_json = as_json
        self.symbol = symbol
        self.out = out

    def __call__(self, msg: Any) -> bool:
        """Print one message; False when the symbol filter skipped it."""
        from marketpipe.schemas.codec import CodecError

        key = msg.key().decode("utf-8", "replace") if msg.key() else ""
        value = msg.value() or b""
        headers = header_dict(msg.headers())
        try:
            decoded = self.codec.decode(value)
        except CodecError as exc:
            legacy = legacy_json(value)
            if legacy is not None:  # the trader's ledger before it was Avro: kept for good by compaction
                return self._print(msg, key, "json", legacy)
            if self.symbol:
                return False
            if "provider" in headers:  # a raw frame, not Avro
                info = describe_raw(value, headers)
                line = (json.dumps({"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                                    "key": key, **info}, ensure_ascii=False) if self.as_json else
                        f"{msg.topic()}[{msg.partition()}]@{msg.offset()} {headers.get('provider')} "
                        f"seq={headers.get('seq')} {headers.get('frame')}/{headers.get('opcode')} "
                        f"{info['bytes']}B {info['preview']}")
            else:
                line = f"{msg.topic()}[{msg.partition()}]@{msg.offset()} undecodable: {exc}"
            print(line, file=self.out, flush=True)
            return True
        return self._print(msg, key, decoded.schema, decoded.record)

    def _print(self, msg: Any, key: str, schema: str, record: dict[str, Any]) -> bool:
        if self.symbol and self.symbol not in (key, record.get("symbol")):
            return False
        if self.as_json:
            line = json.dumps({"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                               "key": key, "schema": schema, "record": jsonable(record)}, ensure_ascii=False)
        else:
            line = readable(msg.topic(), schema, record)
        print(line, file=self.out, flush=True)
        return True


def legacy_json(value: bytes) -> dict[str, Any] | None:
    """A JSON object value (order.ledger and order.positions before they were Avro), else None."""
    if value[:1] != b"{":
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def tail(settings: Settings, topic: str, from_beginning: bool, limit: int | None,
         on_message: Callable[[Any], bool], idle_exit: float | None = None) -> int:
    """Assign every partition of ``topic`` and hand messages to ``on_message``; returns the count printed."""
    import uuid

    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

    from marketpipe.kafka.quietlog import FIRST_ANSWER_SECONDS, command_rdkafka_logger

    if settings.kafka.security_protocol != "PLAINTEXT":
        from marketpipe.kafka.security import refusal

        # a refused login or an untrusted certificate: said once, not retried in the log forever
        if (why := refusal(settings.kafka.client_config(), timeout=15)) is not None:
            raise SystemExit(f"marketpipe tail: Kafka at {settings.kafka.bootstrap_servers}: {why}")
    consumer = Consumer({**settings.kafka.client_config(), **command_rdkafka_logger(),
                         "group.id": f"marketpipe-tail-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        md = consumer.list_topics(topic, timeout=FIRST_ANSWER_SECONDS)
        meta = md.topics.get(topic)
        if meta is not None and meta.error is not None and meta.error.name() == "TOPIC_AUTHORIZATION_FAILED":
            raise SystemExit(f"marketpipe tail: {settings.kafka.sasl_username or 'this client'} may not read "
                             f"{topic!r} (the grants: marketpipe topics acl --dry-run)")
        if meta is None or meta.error is not None or not meta.partitions:
            raise SystemExit(f"marketpipe tail: topic {topic!r} does not exist (marketpipe topics list)")
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(topic, p, start) for p in meta.partitions])
        shown = 0
        last = time.monotonic()
        while limit is None or shown < limit:
            msg = consumer.poll(0.5)
            if msg is None:
                if idle_exit is not None and time.monotonic() - last > idle_exit:
                    break
                continue
            if msg.error():
                print(f"marketpipe tail: {msg.error()}", file=sys.stderr)
                continue
            last = time.monotonic()
            if on_message(msg):
                shown += 1
        return shown
    finally:
        consumer.close()
