"""The A/B arbiter on its own: first copy wins, the other line's copy is dropped, memory is bounded."""

from __future__ import annotations

from marketpipe.processors.arbitrate import Arbiter


def test_the_first_copy_wins_and_the_other_lines_copy_is_dropped_and_counted() -> None:
    arb = Arbiter(window_ms=1_000)
    assert arb.first("c", ("t", 1), "A", 100)
    assert not arb.first("c", ("t", 1), "B", 105)
    assert arb.first("c", ("t", 2), "B", 106)  # B first this time
    assert not arb.first("c", ("t", 2), "A", 110)
    assert arb.dropped == 2


def test_a_repeat_on_the_same_line_is_the_providers_own_and_published_as_without_ab() -> None:
    arb = Arbiter()
    assert arb.first("c", 7, "A", 0)
    assert arb.first("c", 7, "A", 1)
    assert arb.dropped == 0


def test_keys_are_arbitrated_apart() -> None:
    arb = Arbiter()
    assert arb.first("c1", 7, "A", 0)
    assert arb.first("c2", 7, "B", 0)


def test_identities_older_than_the_window_are_forgotten() -> None:
    arb = Arbiter(window_ms=1_000)
    assert arb.first("c", 1, "A", 0)
    assert arb.first("c", 2, "A", 1_500)  # expires 1
    assert len(arb.seen["c"]) == 1
    assert arb.first("c", 1, "B", 1_600)  # too late to be known: published again
    assert not arb.first("c", 2, "B", 1_700)


def test_memory_per_key_is_bounded_by_size_too() -> None:
    arb = Arbiter(window_ms=10**9, max_per_key=3)
    for n in range(10):
        assert arb.first("c", n, "A", n)
    assert list(arb.seen["c"]) == [7, 8, 9]
    assert not arb.first("c", 9, "B", 11)
    assert arb.first("c", 0, "B", 12)
