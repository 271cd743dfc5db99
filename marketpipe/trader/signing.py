"""HMAC-SHA256 signatures of order commands.

The signature covers a canonical text of every field that changes what the broker is asked
to do, in a fixed order, so a tampered price, side, volume, account or expiry fails
verification. Canonical form (version 1), fields joined by ``\\n``::

    v1, command_id, account, action, provider, symbol, side, price, volume,
    target_command_id, broker_order_id, event_time, expires_at, key_id

``None`` is the empty string; ``price`` is written with exactly three decimals (the schema's
scale), so ``Decimal("10.5")`` and ``Decimal("10.500")`` sign the same. A price that does not
fit the schema's decimal(18,3) (1E+30, NaN) has no canonical text: such a command fails
verification, it never raises (anyone can write one to order.commands, no key needed).

Account numbers are secrets; outside the process an account is named by its configured alias
or by :func:`account_tag`, a keyed hash an operator holding the signing key can recompute.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any, Mapping

FIELDS = ("command_id", "account", "action", "provider", "symbol", "side", "price", "volume",
          "target_command_id", "broker_order_id", "event_time", "expires_at", "key_id")
SCALE = Decimal("0.001")
#: decimal(18, 3): at most 15 digits before the point
PRICE_LIMIT = Decimal(10) ** 15


def exact_price(value: Any) -> Decimal:
    """``value`` as the schema's decimal(18,3); ValueError (with the reason) when it does not fit."""
    try:
        price = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (ArithmeticError, TypeError, ValueError):
        raise ValueError(f"price {value!r} is not a decimal number") from None
    if not price.is_finite():
        raise ValueError(f"price {value} is not a finite number")
    if price.copy_abs() >= PRICE_LIMIT:  # copy_abs: abs() rounds in the context and overflows on 1E+999999
        raise ValueError(f"price {value} does not fit decimal(18,3) (at most 15 digits before the point)")
    return price.quantize(SCALE)


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "price":
        return str(exact_price(value))
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
    try:
        expected = sign(command, key)
    except ValueError:  # no canonical form (e.g. a price outside decimal(18,3)): nobody signed this
        return False
    # compared as bytes: compare_digest refuses str with non-ASCII characters, and a forged
    # signature may hold anything
    return hmac.compare_digest(expected.encode("ascii"), str(signature).encode("utf-8", "surrogatepass"))


def account_tag(account: str, key: str) -> str:
    """A stable public name for an account number: HMAC-SHA256 with the signing key, truncated.

    Without the key the number cannot be recovered from the tag (account numbers are short
    enough to enumerate, so a plain hash would not do)."""
    digest = hmac.new(key.encode("utf-8"), b"account\n" + account.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"acct-{digest[:16]}"


# ---- order.control records -----------------------------------------------------------------------
#: a control record's canonical form (version 1), fields joined by ``\n``:
#: ``control-v1, kind, content (sorted JSON of the record without key_id/signature), key_id, at_ms``
CONTROL_VERSION = "control-v1"


def control_canonical(kind: str, content: Mapping[str, Any], key_id: str, at_ms: int) -> bytes:
    import json

    body = {k: v for k, v in content.items() if k not in ("key_id", "signature", "at_ms")}
    text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return "\n".join([CONTROL_VERSION, kind, text, key_id, str(at_ms)]).encode("utf-8")


def sign_control(kind: str, content: Mapping[str, Any], key_id: str, at_ms: int, key: str) -> str:
    """HMAC-SHA256 over a control record's content, key id and time (same key as order commands)."""
    if not key:
        raise ValueError("no signing key: set MARKETPIPE_ORDER_SIGNING_KEY")
    return hmac.new(key.encode("utf-8"), control_canonical(kind, content, key_id, at_ms), hashlib.sha256).hexdigest()


def verify_control(kind: str, record: Mapping[str, Any], key: str) -> bool:
    signature, key_id, at_ms = record.get("signature"), record.get("key_id"), record.get("at_ms")
    if not key or not isinstance(signature, str) or not signature or not isinstance(key_id, str) \
            or not isinstance(at_ms, int) or isinstance(at_ms, bool):
        return False
    expected = sign_control(kind, record, key_id, at_ms, key)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "surrogatepass"))
