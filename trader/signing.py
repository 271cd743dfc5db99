"""HMAC-SHA256 signatures of order commands.

The signature covers a canonical text of every field that changes what the broker is asked
to do, in a fixed order, so a tampered price, side, volume, account or expiry fails
verification. Canonical form (version 1), fields joined by ``\\n``::

    v1, command_id, account, action, provider, symbol, side, price, volume,
    target_command_id, broker_order_id, event_time, expires_at, key_id

``None`` is the empty string; ``price`` is written with exactly three decimals (the schema's
scale), so ``Decimal("10.5")`` and ``Decimal("10.500")`` sign the same.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any, Mapping

FIELDS = ("command_id", "account", "action", "provider", "symbol", "side", "price", "volume",
          "target_command_id", "broker_order_id", "event_time", "expires_at", "key_id")
SCALE = Decimal("0.001")


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "price":
        return str(Decimal(value).quantize(SCALE))
    return str(value)


def canonical(command: Mapping[str, Any]) -> bytes:
    return "\n".join(["v1", *(_text(f, command.get(f)) for f in FIELDS)]).encode("utf-8")


def sign(command: Mapping[str, Any], key: str) -> str:
    if not key:
        raise ValueError("no signing key: set MARKETPIPE_ORDER_SIGNING_KEY")
    return hmac.new(key.encode("utf-8"), canonical(command), hashlib.sha256).hexdigest()


def verify(command: Mapping[str, Any], key: str) -> bool:
    signature = command.get("signature") or ""
    if not key or not signature:
        return False
    return hmac.compare_digest(sign(command, key), str(signature))
