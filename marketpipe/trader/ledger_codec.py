"""The trader's compacted topics in Avro, like every other topic: ``LedgerEntry`` on order.ledger,
``Position`` on order.positions (marketpipe/schemas/*.avsc), in either framing of the codec.

Ledger values written before this were JSON objects, and a compacted topic keeps the latest
value per command for good: :func:`decode_entry` reads both. An :class:`~marketpipe.trader.ledger.Entry`
field the schema does not name yet travels inside ``extra_json`` and comes back as that field,
so the ledger never loses what the trader keeps, whatever the schema lags behind.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from marketpipe.schemas.codec import Codec, schema
from marketpipe.trader.ledger import Entry

#: the key under extra_json that holds Entry.extra itself; the other keys are Entry fields
EXTRA = "extra"


def _fields(name: str) -> frozenset[str]:
    return frozenset(f["name"] for f in json.loads(schema(name).document)["fields"])


def entry_record(entry: Entry) -> dict[str, Any]:
    declared = _fields("LedgerEntry")
    values = asdict(entry)
    rest = {k: v for k, v in values.items() if k not in declared and k != EXTRA}
    record = {k: v for k, v in values.items() if k in declared}
    record["extra_json"] = json.dumps({EXTRA: entry.extra, **rest}, ensure_ascii=False, sort_keys=True)
    return record


def encode_entry(codec: Codec, entry: Entry, topic: str) -> bytes:
    return codec.encode("LedgerEntry", entry_record(entry), topic=topic)


def decode_entry(codec: Codec, data: bytes) -> Entry:
    """An entry of either encoding: Avro (either framing) or the JSON of earlier versions."""
    if data[:1] == b"{":
        return Entry.from_bytes(data)
    record = dict(codec.decode(data, expect="LedgerEntry").record)
    kept = json.loads(record.pop("extra_json") or "{}")
    values = {**{k: v for k, v in kept.items() if k != EXTRA}, **record, "extra": kept.get(EXTRA) or {}}
    return Entry(**{k: v for k, v in values.items() if k in Entry.__dataclass_fields__})


def position_record(account: str, row: dict[str, Any], at_ms: int) -> dict[str, Any]:
    """A ``Position`` from one row of the brokerage's hold list (numbers or text, as reported)."""

    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    def amount(value: Any) -> int | str | None:
        return value if value is None or (isinstance(value, int) and not isinstance(value, bool)) else str(value)

    return {"account": account, "code": text(row.get("code")), "name": text(row.get("name")),
            "hold_vol": amount(row.get("hold_vol")), "usable_vol": amount(row.get("usable_vol")), "at_ms": at_ms}
