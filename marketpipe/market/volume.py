"""Per-interval volume from the cumulative day volume of level-1 snapshots.

Pure: ``derive(state, cum_volume, event_time_ms) -> (interval_volume | None, new_state)``;
the caller keeps one state per symbol (a plain tuple, so it serializes as a JSON list).

The processor does not fill ``Quote.interval_volume``: it depends on the symbol's snapshot
before, which a worker restarted after a crash, or given the partition by a rebalance, has not
seen, so a replayed quote would differ from the original. Readers derive it in the order they
read (``marketpipe.client.IntervalVolumes``), where "the snapshot before" is well defined.

Rules (the result is never negative):

* first snapshot of a symbol, or no cumulative volume: ``None`` (unknown);
* a snapshot of a later trading day (China date of the event time): the day's counter
  restarted, so the volume since the previous snapshot is the new cumulative value;
* a snapshot older than the state (earlier day, earlier time on the same day, or the same
  time with a smaller count): stale,
  ``None`` and the state is kept, so the next in-order snapshot is measured from the
  newest one seen;
* a repeat (same cumulative value): ``0``;
* a later snapshot of the same day whose cumulative value went down: the provider reset
  or corrected its counter; ``None`` and the new value becomes the reference.
"""

from __future__ import annotations

from typing import NamedTuple

from marketpipe.market import chinatime


class VolumeState(NamedTuple):
    day: int  # China trading date as days since 1970-01-01
    cum: float  # cumulative volume of the newest snapshot seen
    event_time: int  # its event time, UTC epoch ms


def trading_day(event_time_ms: int) -> int:
    return chinatime.day_number(event_time_ms)


def derive(state: VolumeState | None, cum_volume: float | None,
           event_time_ms: int) -> tuple[float | None, VolumeState | None]:
    if cum_volume is None or not 0.0 <= cum_volume < float("inf"):  # also rejects nan
        return None, state
    day = trading_day(event_time_ms)
    new = VolumeState(day, cum_volume, event_time_ms)
    if state is None:
        return None, new
    if day > state.day:
        return cum_volume, new
    if day < state.day or event_time_ms < state.event_time:
        return None, state
    if event_time_ms == state.event_time and cum_volume < state.cum:
        return None, state  # same instant, smaller count: the older of two reordered snapshots
    if cum_volume < state.cum:
        return None, new
    return cum_volume - state.cum, new


def from_json(value: list | tuple | None) -> VolumeState | None:
    """A state read back from a table/changelog that stored it as a list."""
    if not value:
        return None
    return VolumeState(int(value[0]), float(value[1]), int(value[2]))


class VolumeTracker:
    """Convenience holder of the per-symbol states for a single process."""

    def __init__(self) -> None:
        self.states: dict[str, VolumeState] = {}

    def update(self, symbol: str, cum_volume: float | None, event_time_ms: int) -> float | None:
        interval, state = derive(self.states.get(symbol), cum_volume, event_time_ms)
        if state is not None:
            self.states[symbol] = state
        return interval
