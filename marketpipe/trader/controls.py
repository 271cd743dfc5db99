"""Who may lift a halt: the checks on an order.control record that would resume trading.

Halting needs no key (a halt is fail-safe). Anything that would lift one — a ``{"halted": false}``
record or a tombstone — must carry an HMAC (:func:`marketpipe.trader.signing.sign_control`) over
its content, key id and time, with the order-signing key, and must be:

* signed with a known key id and a valid signature (else ``unsigned`` / ``bad_signature``);
* fresh: its signed time within :data:`MAX_SKEW_MS` of the record's Kafka timestamp (order.control
  uses LogAppendTime, so the broker stamps it) and not ahead of our clock (else ``stale``);
* newer than every control record applied before it, the halt it lifts included (else ``replayed``:
  a copy of an old resume written again after a new halt).

A tombstone can carry nothing, so it never lifts a halt (``tombstone``). A refused record leaves
the trader halted, is logged in one line and counted (``marketpipe_trader_control_refused_total``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from prometheus_client import Counter

from marketpipe.trader import signing

KIND_KILL_SWITCH = "kill_switch"
KIND_RESOLVE = "resolve"
KEY_IDS = frozenset({"default"})
#: how far a record's signed time may be from its Kafka timestamp (clock skew plus delivery)
MAX_SKEW_MS = 120_000

REFUSED = Counter("marketpipe_trader_control_refused_total",
                  "order.control records refused (unsigned, badly signed, stale, replayed, tombstone), by reason",
                  ["reason"])


@dataclass(frozen=True)
class Refusal:
    reason: str  # the metric label
    detail: str  # the one log line


def check_signed(kind: str, record: Mapping[str, Any] | None, key: str, *, last_at_ms: int,
                 record_ts_ms: int | None, now_ms: int) -> Refusal | None:
    """None when ``record`` is a valid, fresh, new signed control record of ``kind``."""
    if record is None:
        return Refusal("tombstone", "a tombstone cannot lift a halt (it carries no signature)")
    if not record.get("signature"):
        return Refusal("unsigned", "the record is not signed (marketpipe order resume signs it)")
    if record.get("key_id") not in KEY_IDS or not signing.verify_control(kind, record, key):
        return Refusal("bad_signature", f"bad signature (key id {str(record.get('key_id'))[:20]!r})")
    at_ms = int(record["at_ms"])
    if at_ms > now_ms + MAX_SKEW_MS:
        return Refusal("stale", f"signed for {at_ms}, ahead of our clock ({now_ms})")
    if record_ts_ms is not None and record_ts_ms > 0 and abs(record_ts_ms - at_ms) > MAX_SKEW_MS:
        return Refusal("stale", f"signed at {at_ms} but written at {record_ts_ms}: an old record written again")
    if at_ms <= last_at_ms:
        return Refusal("replayed", f"signed at {at_ms}, not after the last control record applied ({last_at_ms})")
    return None
