"""Content identities for A/B arbitration (marketpipe/processors/arbitrate.py): the shape a
provider's identity function has, and the fallback for records whose provider names no fields.

Two lines' copies of one record differ only in ``receive_time_ns`` and ``source`` (where each line's
frame lies in the raw topic); everything else is what the provider sent.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, Mapping

#: ``identity(schema, symbol, record)``: what makes a decoded record the same record on both lines
Identity = Callable[[str, str, Mapping[str, Any]], Hashable]

#: fields that differ between two lines' copies of the same record
PER_LINE = frozenset({"receive_time_ns", "source"})


def _frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple((k, _frozen(v)) for k, v in sorted(value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def whole_content(schema: str, symbol: str, record: Mapping[str, Any]) -> Hashable:
    """Every field but the per-line ones: for records whose provider numbers nothing (depth, klines,
    news); two different records with all fields equal are indistinguishable, so one is enough."""
    return (schema, symbol, tuple((k, _frozen(v)) for k, v in sorted(record.items()) if k not in PER_LINE))
