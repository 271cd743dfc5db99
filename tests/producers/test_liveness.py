"""Liveness per subscription on injected clocks: a silent code is re-subscribed after its limit,
the connection recycled one limit later, and nothing is done for a closed market, a code that
never delivered, or a code that already cost one recycle."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from marketpipe.producers.liveness import Action, LivenessWatch, Verdict


@dataclass
class Hours:
    open: bool = True

    def is_open_at(self, epoch_seconds: float) -> bool:
        return self.open


def fed(watch: LivenessWatch, codes: list[str], until: float, every: float = 0.5) -> float:
    """Every code delivers each ``every`` s up to ``until``; ``due`` is asked in between, as the session does."""
    t = 0.0
    watch.start(t)
    while t < until:
        t += every
        assert watch.due(t, t) == []
        for code in codes:
            watch.seen(code, t)
    return t


def run_silent(watch: LivenessWatch, start: float, seconds: float, step: float = 0.5) -> list[tuple[float, Verdict]]:
    out, t = [], start
    while t < start + seconds:
        t += step
        out += [(t, v) for v in watch.due(t, t)]
    return out


def test_a_silent_code_is_resubscribed_after_its_limit_then_the_connection_recycled() -> None:
    watch = LivenessWatch(["A", "B"], Hours(), silence_seconds=3.0)
    last = fed(watch, ["A", "B"], until=10)
    actions = []
    t = last
    while t < last + 8:  # B keeps delivering, A is mute
        t += 0.5
        actions += [(t, v) for v in watch.due(t, t)]
        watch.seen("B", t)
    assert [(v.action, v.code) for _, v in actions] == [(Action.RESUBSCRIBE, "A"), (Action.RECYCLE, "A")]
    (t_re, re), (t_rc, rc) = actions
    # the bound: limit + check after the last frame, then one more limit
    assert 3.0 < t_re - last <= 3.0 + 0.5 and re.silent_seconds > 3.0 and re.limit_seconds == 3.0
    assert 3.0 < t_rc - t_re <= 3.0 + 0.5 and rc.silent_seconds == t_rc - last
    assert "A silent for" in rc.reason() and "recycled" in rc.reason()


def test_the_limit_follows_a_slow_codes_usual_interval() -> None:
    watch = LivenessWatch(["S"], Hours(), silence_seconds=3.0, factor=5.0)
    last = fed(watch, ["S"], until=40, every=2.0)  # usually every 2 s -> 10 s limit
    assert watch.limit("S") == 10.0
    [(t, v)] = run_silent(watch, last, 12)
    assert v.action is Action.RESUBSCRIBE and 10.0 < t - last <= 10.5


def test_a_code_that_comes_back_after_the_resubscribe_is_not_recycled() -> None:
    watch = LivenessWatch(["A"], Hours(), silence_seconds=3.0)
    last = fed(watch, ["A"], until=10)
    [(t, v)] = run_silent(watch, last, 3.5)
    assert v.action is Action.RESUBSCRIBE
    watch.seen("A", t + 1)  # the re-subscribe worked
    assert run_silent(watch, t + 1, 2.5) == []
    assert watch.limit("A") == 3.0  # the mute spell did not become its usual interval


def test_a_closed_market_is_never_acted_on_and_its_silence_does_not_count_after_the_open() -> None:
    hours = Hours()
    watch = LivenessWatch(["A"], hours, silence_seconds=3.0)
    last = fed(watch, ["A"], until=10)
    hours.open = False
    assert run_silent(watch, last, 600) == []
    hours.open = True
    [(t, v)] = run_silent(watch, last + 600, 4)
    assert v.action is Action.RESUBSCRIBE and 3.0 < t - (last + 600) <= 4.0


def test_a_code_that_never_delivered_is_left_alone() -> None:
    watch = LivenessWatch(["A", "HALTED"], Hours(), silence_seconds=3.0)
    last = fed(watch, ["A"], until=10)
    watch.seen("HALTED", 1.0)  # fewer frames than min_samples: its silence is its normal state
    assert [v.code for _, v in run_silent(watch, last, 3.5)] == ["A"]


def test_after_one_recycle_a_still_silent_code_is_only_resubscribed_until_it_delivers() -> None:
    watch = LivenessWatch(["A"], Hours(), silence_seconds=3.0)
    last = fed(watch, ["A"], until=10)
    first = [v.action for _, v in run_silent(watch, last, 7.5)]
    assert first == [Action.RESUBSCRIBE, Action.RECYCLE]
    watch.start(last + 8)  # the new session subscribed everything again; A stays mute
    again = [v.action for _, v in run_silent(watch, last + 8, 13)]
    assert again == [Action.RESUBSCRIBE] * 3
    watch.seen("A", last + 30)  # it delivers: a later silence may recycle again
    later = [v.action for _, v in run_silent(watch, last + 30, 7.5)]
    assert later == [Action.RESUBSCRIBE, Action.RECYCLE]


def test_due_looks_at_most_every_check_period() -> None:
    watch = LivenessWatch(["A"], Hours(), silence_seconds=3.0)
    last = fed(watch, ["A"], until=10)
    assert watch.due(last + 2.8, last + 2.8) == []  # not yet over the limit
    # looked again within check_seconds of the previous look: nothing, although over the limit
    assert watch.due(last + 3.2, last + 3.2) == []
    assert watch.due(last + 3.4, last + 3.4) != []


# ---- in the session: the actions reach the socket and md.status ---------------------------------

def test_the_session_resubscribes_with_add_then_recycles_and_reports_both() -> None:
    from marketpipe.market import markethours as mh
    from marketpipe.producers.session import Retry, Session
    from marketpipe.providers.jvquant import protocol
    from marketpipe.providers.jvquant.feed import JvQuantFeed
    from tests.producers.test_session_stall import Clock, FakeWs, cst_epoch

    class StatusSink:
        def __init__(self) -> None:
            self.status_records: list[dict] = []

        def send(self, value: bytes, meta: object) -> None:
            pass

        def status(self, record: dict) -> None:
            self.status_records.append(record)

    both = protocol.deflate_raw("lv1_600519=a\nlv1_000001=b")
    one = protocol.deflate_raw("lv1_000001=b")

    def script(t: int) -> bytes:  # one frame a second; 600519 is mute from second 20
        return both if t < 20 else one

    clock = Clock(cst_epoch("2026-11-24 10:00:00"))
    feed = JvQuantFeed("http://x", "tok", ["600519", "000001"], ["lv1", "lv2"])
    sink = StatusSink()
    session = Session(feed, sink, "c1", stall_seconds=30, clock=lambda: clock.mono, wallclock=lambda: clock.wall,
                      calendar=mh.ALWAYS, subscription_silence=5.0)
    assert session.liveness is not None
    session.liveness.start(clock.mono)
    ws = FakeWs(clock, script, [session], 100)
    with pytest.raises(Retry, match="600519 silent for .* connection recycled"):
        session._receive(ws)  # type: ignore[arg-type]
    actions = [(r["kind"], r["symbol"], r["silent_ms"]) for r in sink.status_records]
    assert [a[:2] for a in actions] == [("resubscribed", "600519"), ("recycled", "600519")]
    assert ws.sent == ["add=lv1_600519,lv2_600519"]
    # last frame naming it at second 19: re-subscribe within limit + 1 s, recycle one limit later
    assert 5000 < actions[0][2] <= 6000 and 10000 < actions[1][2] <= 12000
