"""Building, signing and sending order commands (the ``marketpipe order`` user tool)."""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from marketpipe import topics
from marketpipe.settings import Settings
from trader import signing


def place(account: str, symbol: str, side: str, price: str | Decimal, volume: int, key: str, *,
          command_id: str | None = None, ttl_s: float = 30.0, now_ms: int | None = None) -> dict[str, Any]:
    try:
        exact = Decimal(str(price))
    except InvalidOperation:
        raise ValueError(f"price {price!r} is not a decimal number") from None
    if exact.as_tuple().exponent < -3:  # type: ignore[operator]
        raise ValueError(f"price {price}: at most 3 decimals (A-share ticks are 0.01 / 0.001)")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    cmd: dict[str, Any] = {
        "command_id": command_id or uuid.uuid4().hex, "account": account, "action": "PLACE",
        "provider": "jvquant", "symbol": symbol, "side": side.upper(), "price": exact.quantize(signing.SCALE),
        "volume": int(volume), "target_command_id": None, "broker_order_id": None,
        "event_time": now, "expires_at": now + int(ttl_s * 1000), "key_id": "default", "signature": "",
    }
    cmd["signature"] = signing.sign(cmd, key)
    return cmd


def cancel(account: str, symbol: str, key: str, *, target_command_id: str | None = None,
           broker_order_id: str | None = None, command_id: str | None = None, ttl_s: float = 30.0) -> dict[str, Any]:
    if not target_command_id and not broker_order_id:
        raise ValueError("cancel needs --target-command-id or --broker-order-id")
    now = int(time.time() * 1000)
    cmd: dict[str, Any] = {
        "command_id": command_id or uuid.uuid4().hex, "account": account, "action": "CANCEL",
        "provider": "jvquant", "symbol": symbol, "side": None, "price": None, "volume": 0,
        "target_command_id": target_command_id, "broker_order_id": broker_order_id,
        "event_time": now, "expires_at": now + int(ttl_s * 1000), "key_id": "default", "signature": "",
    }
    cmd["signature"] = signing.sign(cmd, key)
    return cmd


def send(settings: Settings, cmd: dict[str, Any], producer: Any = None) -> None:
    """Publish one command to order.commands (keyed by account: one account's commands stay in order)."""
    from confluent_kafka import Producer

    from schemas import codec

    topic = settings.topic(topics.ORDER_COMMANDS)
    value = codec.from_settings(settings).encode("OrderCommand", cmd, topic=topic)
    own = producer is None
    producer = producer or Producer({**settings.kafka.client_config(), "enable.idempotence": True, "acks": "all"})
    producer.produce(topic, key=cmd["account"].encode(), value=value, timestamp=cmd["event_time"])
    if own and producer.flush(30):
        raise RuntimeError("order command not acknowledged by Kafka in 30 s")


def set_kill_switch(settings: Settings, halted: bool, reason: str = "") -> None:
    from confluent_kafka import Producer

    producer = Producer({**settings.kafka.client_config(), "enable.idempotence": True, "acks": "all"})
    value = json.dumps({"halted": halted, "reason": reason, "at_ms": int(time.time() * 1000)}).encode()
    producer.produce(settings.topic(topics.ORDER_CONTROL), key=b"kill_switch", value=value)
    if producer.flush(30):
        raise RuntimeError("kill switch not acknowledged by Kafka in 30 s")
