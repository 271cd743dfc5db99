"""jvQuant's content identity for A/B arbitration (marketpipe/providers/identity.py)."""

from __future__ import annotations

from typing import Any, Hashable, Mapping

from marketpipe.providers.identity import whole_content


def identity(schema: str, symbol: str, record: Mapping[str, Any]) -> Hashable:
    """Level 2: the exchange's trade number (unique per symbol); level 1: the snapshot's symbol,
    time and cumulative volume (a new trade moves the volume, a repeat of the snapshot does not)."""
    if schema == "Tick" and record.get("trade_id"):
        return ("Tick", symbol, record["trade_id"])
    if schema == "Quote":
        return ("Quote", symbol, record.get("event_time"), record.get("cum_volume"))
    return whole_content(schema, symbol, record)
