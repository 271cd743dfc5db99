"""Infoway's content identity for A/B arbitration (marketpipe/providers/identity.py)."""

from __future__ import annotations

from typing import Any, Hashable, Mapping

from marketpipe.providers.identity import whole_content


def identity(schema: str, symbol: str, record: Mapping[str, Any]) -> Hashable:
    """Trades carry no number: symbol, time, price, volume and side. Two real trades alike in all
    five within the arbiter's window read as one (Infoway's millisecond times make that rare)."""
    if schema == "Tick":
        return ("Tick", symbol, record.get("event_time"), record.get("price"), record.get("size"), record.get("side"))
    return whole_content(schema, symbol, record)
