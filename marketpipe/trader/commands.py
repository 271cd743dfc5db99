"""Building, signing and sending order commands (the ``marketpipe order`` user tool)."""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from marketpipe.kafka import topics
from marketpipe.kafka.clients import durable_producer_config
from marketpipe.kafka.delivery import write_one
from marketpipe.settings import Settings
from marketpipe.trader import signing

log = logging.getLogger(__name__)

#: the schema's ``long``; the trader's own volume limit is far lower
MAX_VOLUME = 2**63 - 1
KILL_SWITCH_KEY = b"kill_switch"
#: a command lives seconds to minutes; anything beyond a year is a typo (and overflows the schema's ms)
MAX_TTL_S = 366 * 86_400


def _expires_at(now_ms: int, ttl_s: float) -> int:
    if not math.isfinite(ttl_s) or abs(ttl_s) > MAX_TTL_S:
        raise ValueError(f"ttl {ttl_s} s: a command's lifetime must be a number of seconds up to {MAX_TTL_S}")
    return now_ms + int(ttl_s * 1000)


def place(account: str, symbol: str, side: str, price: str | Decimal, volume: int | str, key: str, *,
          command_id: str | None = None, ttl_s: float = 30.0, now_ms: int | None = None) -> dict[str, Any]:
    """A signed PLACE command; ValueError (one readable sentence) for numbers no order can have."""
    try:
        exact = Decimal(str(price))
    except ArithmeticError:
        raise ValueError(f"price {price!r} is not a decimal number") from None
    if not exact.is_finite():
        raise ValueError(f"price {price} is not a finite number")
    if exact <= 0:
        raise ValueError(f"price {price}: a limit price must be positive")
    if exact.as_tuple().exponent < -3:  # type: ignore[operator]
        raise ValueError(f"price {price}: at most 3 decimals (A-share ticks are 0.01 / 0.001)")
    signing.exact_price(exact)  # decimal(18,3), the schema's type
    try:
        shares = int(str(volume))
    except ValueError:
        raise ValueError(f"volume {volume!r} is not a whole number") from None
    if not 0 < shares <= MAX_VOLUME:
        raise ValueError(f"volume {volume}: must be a positive whole number of shares (at most {MAX_VOLUME})")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    cmd: dict[str, Any] = {
        "command_id": command_id or uuid.uuid4().hex, "account": account, "action": "PLACE",
        "provider": "jvquant", "symbol": symbol, "side": side.upper(), "price": exact.quantize(signing.SCALE),
        "volume": shares, "target_command_id": None, "broker_order_id": None,
        "event_time": now, "expires_at": _expires_at(now, ttl_s), "key_id": "default", "signature": "",
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
        "event_time": now, "expires_at": _expires_at(now, ttl_s), "key_id": "default", "signature": "",
    }
    cmd["signature"] = signing.sign(cmd, key)
    return cmd


def send(settings: Settings, cmd: dict[str, Any], producer: Any = None) -> None:
    """Publish one command to order.commands (keyed by account: one account's commands stay in order)."""
    from confluent_kafka import Producer

    from marketpipe.schemas import codec

    topic = settings.topic(topics.ORDER_COMMANDS)
    value = codec.from_settings(settings).encode("OrderCommand", cmd, topic=topic)
    if producer is not None:  # the caller's producer: the caller flushes
        producer.produce(topic, key=cmd["account"].encode(), value=value, timestamp=cmd["event_time"])
        return
    write_one(Producer(durable_producer_config(settings.kafka.client_config())), topic,
              cmd["account"].encode(), value, "order command", log, timestamp=cmd["event_time"])


@dataclass(frozen=True)
class KillSwitch:
    """The kill-switch state one order.control record says."""

    halted: bool
    reason: str = ""
    readable: bool = True
    record: dict[str, Any] | None = None  # the record as read (None: a tombstone)
    at_ms: int = 0  # its stated time, 0 when it has none


def kill_switch_value(halted: bool, reason: str = "", key: str = "", now_ms: int | None = None) -> bytes:
    """One kill-switch record; signed when ``key`` is given (a resume must be: see trader/controls.py)."""
    from marketpipe.trader import controls

    record: dict[str, Any] = {"halted": halted, "reason": reason,
                              "at_ms": int(time.time() * 1000) if now_ms is None else now_ms}
    if key:
        record["key_id"] = "default"
        record["signature"] = signing.sign_control(controls.KIND_KILL_SWITCH, record, "default", record["at_ms"], key)
    return json.dumps(record, ensure_ascii=False).encode()


def read_kill_switch(value: bytes | None) -> KillSwitch:
    """Parse a kill-switch record. Fails closed: a record that cannot be read halts trading.

    order.control is compacted and replayed from its start at every trader start, so a bad
    record cannot be deleted; it is superseded by the next valid one (``marketpipe order
    resume``). A tombstone (no value) means the switch was removed: not halted.
    """
    if value is None:
        return KillSwitch(False)
    try:
        state = json.loads(value)
    except (ValueError, UnicodeDecodeError) as exc:
        return KillSwitch(True, f"unreadable kill-switch record ({exc}): halted until a valid one", False)
    if not isinstance(state, dict) or not isinstance(state.get("halted"), bool):
        return KillSwitch(True, f"unreadable kill-switch record (no boolean 'halted' in {str(value[:80])}): "
                                "halted until a valid one", False)
    at_ms = state.get("at_ms")
    return KillSwitch(state["halted"], str(state.get("reason") or ""), record=state,
                      at_ms=at_ms if isinstance(at_ms, int) and not isinstance(at_ms, bool) else 0)


def set_kill_switch(settings: Settings, halted: bool, reason: str = "", key: str = "") -> None:
    """Write the kill switch; a resume (``halted`` False) is refused by the trader unless signed with ``key``."""
    from confluent_kafka import Producer

    producer = Producer(durable_producer_config(settings.kafka.client_config()))
    write_one(producer, settings.topic(topics.ORDER_CONTROL), KILL_SWITCH_KEY, kill_switch_value(halted, reason, key),
              "kill switch", log)


# ---- operator resolutions of unresolved commands (order.control, key ``resolve:<command id>``) -----
def resolution_value(command_id: str, placed: str | None, key: str, now_ms: int | None = None) -> bytes:
    """A signed verdict: the command's order is ``placed`` (its broker order id) or, with None, not placed."""
    from marketpipe.trader import controls

    record: dict[str, Any] = {"command_id": command_id, "placed": placed or None,
                              "at_ms": int(time.time() * 1000) if now_ms is None else now_ms, "key_id": "default"}
    record["signature"] = signing.sign_control(controls.KIND_RESOLVE, record, "default", record["at_ms"], key)
    return json.dumps(record, ensure_ascii=False).encode()


def read_resolution(value: bytes | None) -> dict[str, Any] | None:
    """The record, or None for a tombstone or anything that is not a JSON object (refused as unsigned)."""
    if value is None:
        return None
    try:
        record = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def send_resolution(settings: Settings, command_id: str, placed: str | None, key: str) -> None:
    from confluent_kafka import Producer

    producer = Producer(durable_producer_config(settings.kafka.client_config()))
    write_one(producer, settings.topic(topics.ORDER_CONTROL), b"resolve:" + command_id.encode(),
              resolution_value(command_id, placed, key), "resolution", log)
