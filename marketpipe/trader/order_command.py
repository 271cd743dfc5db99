"""One order.commands record, decoded once into an :class:`OrderCommand`, and where it came from.

The trader reads every field by name from this type; nothing downstream indexes the Avro dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from marketpipe.schemas.codec import Codec


@dataclass(frozen=True)
class OrderCommand:
    """The fields of marketpipe/schemas/OrderCommand.avsc, as decoded: nothing is normalised, since the
    signature covers these exact values (:func:`marketpipe.trader.signing.canonical`)."""

    command_id: str
    account: str  # as sent: an account number or its alias, until the trader names it publicly
    action: str  # PLACE | CANCEL
    provider: str
    symbol: str
    side: str | None  # BUY | SELL (PLACE only)
    price: Decimal | None  # may lie outside decimal(18,3): the Avro bytes hold any unscaled number
    volume: int
    target_command_id: str | None
    broker_order_id: str | None
    event_time: int
    expires_at: int
    key_id: str
    signature: str

    def as_record(self) -> dict[str, Any]:
        """The record as a mapping, the form :func:`marketpipe.trader.signing.verify` and the pre-trade rules read."""
        return asdict(self)


def decode(codec: Codec, value: bytes) -> OrderCommand:
    """:class:`marketpipe.schemas.codec.CodecError` when ``value`` is no OrderCommand. The codec resolves the
    writer's schema to ours, so every field is present (defaults filled in)."""
    record = codec.decode(value, expect="OrderCommand").record
    return OrderCommand(**{f.name: record[f.name] for f in fields(OrderCommand)})


@dataclass(frozen=True)
class RecordRef:
    """Where a record came from: names a record that has no readable command id."""

    topic: str
    partition: int
    offset: int

    @classmethod
    def of(cls, msg: Any) -> "RecordRef":
        return cls(msg.topic() or "", msg.partition() or 0, msg.offset() or 0)

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"
