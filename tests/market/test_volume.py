"""Per-interval volume from cumulative level-1 volume."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from marketpipe.market.volume import VolumeState, VolumeTracker, derive, from_json, trading_day

CST = ZoneInfo("Asia/Shanghai")


def t(day: int, h: int, m: int, s: int = 0) -> int:
    return int(datetime(2024, 6, day, h, m, s, tzinfo=CST).timestamp() * 1000)


def run(steps: list[tuple[float | None, int]]) -> list[float | None]:
    tracker = VolumeTracker()
    return [tracker.update("600519.SH", cum, when) for cum, when in steps]


def test_in_order_deltas_first_unknown() -> None:
    assert run([(100, t(3, 9, 30)), (250, t(3, 9, 31)), (250, t(3, 9, 32)), (400, t(3, 9, 33))]) == [None, 150, 0, 150]


def test_duplicate_snapshot_gives_zero() -> None:
    assert run([(100, t(3, 9, 30)), (180, t(3, 9, 31)), (180, t(3, 9, 31))]) == [None, 80, 0]


def test_out_of_order_snapshot_is_ignored_and_not_double_counted() -> None:
    # 9:32 arrives before 9:31: the late one yields None, the next is measured from 9:32.
    assert run([(100, t(3, 9, 30)), (300, t(3, 9, 32)), (200, t(3, 9, 31)), (350, t(3, 9, 33))]) == [None, 200, None, 50]


def test_same_instant_reordered_pair() -> None:
    assert run([(100, t(3, 9, 30)), (300, t(3, 9, 31)), (200, t(3, 9, 31)), (300, t(3, 9, 32))]) == [None, 200, None, 0]


def test_new_trading_day_resets() -> None:
    # Cumulative volume drops overnight: the next day's first snapshot counts from zero.
    assert run([(9_000, t(3, 14, 59)), (120, t(4, 9, 25)), (150, t(4, 9, 30))]) == [None, 120, 30]


def test_trading_day_is_china_date() -> None:
    assert trading_day(t(4, 0, 0, 1)) == trading_day(t(3, 0, 0, 0)) + 1
    assert trading_day(t(3, 23, 59, 59)) == trading_day(t(3, 0, 0, 0))


def test_stale_previous_day_snapshot_is_ignored() -> None:
    assert run([(100, t(4, 9, 30)), (9_000, t(3, 14, 59)), (130, t(4, 9, 31))]) == [None, None, 30]


def test_intraday_counter_drop_rebases() -> None:
    assert run([(500, t(3, 10, 0)), (100, t(3, 10, 1)), (160, t(3, 10, 2))]) == [None, None, 60]


def test_missing_and_invalid_volume_keep_state() -> None:
    assert run([(100, t(3, 9, 30)), (None, t(3, 9, 31)), (float("nan"), t(3, 9, 31)), (-5, t(3, 9, 31)),
                (130, t(3, 9, 32))]) == [None, None, None, None, 30]


def test_state_survives_a_json_round_trip() -> None:
    _, state = derive(None, 100.0, t(3, 9, 30))
    assert isinstance(state, VolumeState)
    assert from_json(list(state)) == state and from_json(None) is None
    assert derive(from_json(list(state)), 130.0, t(3, 9, 31))[0] == 30


steps = st.lists(st.tuples(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**9)),
                           st.integers(t(1, 0, 0), t(9, 0, 0))), max_size=60)


@given(steps)
def test_never_negative(seq: list[tuple[float | None, int]]) -> None:
    for out in run(seq):
        assert out is None or out >= 0


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=50))
def test_in_order_day_sums_to_total_growth(incs: list[int]) -> None:
    cums = [sum(incs[: i + 1]) for i in range(len(incs))]
    outs = run([(c, t(3, 9, 30) + i * 3000) for i, c in enumerate(cums)])
    assert outs[0] is None and sum(outs[1:]) == cums[-1] - cums[0]
