"""Ending a session loses nothing that already reached us: when the producer itself decides to
close (a stall verdict, a stop), the frames the provider wrote before it saw our close are read
and kept, not discarded by the closing handshake. Runs the jvQuant simulator in-process."""

from __future__ import annotations

import time
from typing import Any

import pytest

from marketpipe.market import markethours
from marketpipe.producers.session import Retry, Session
from marketpipe.providers.jvquant.feed import JvQuantFeed
from marketpipe.simulators.runner import run as run_sim
from marketpipe.testing import wait_for


class ListSink:
    def __init__(self) -> None:
        self.frames: list[tuple[bytes, Any]] = []

    def send(self, value: bytes, meta: Any) -> None:
        self.frames.append((value, meta))


def data_frames(sink: ListSink) -> int:
    return sum(1 for _, meta in sink.frames if meta.frame == "data")


def connection_totals(sim: Any) -> dict[str, int]:
    (totals,) = sim.stats()["per_connection"].values()
    return totals


def start(sim: Any, sink: ListSink, **kw: Any) -> Session:
    feed = JvQuantFeed(sim.base_url, "tok", ["600519", "000001", "300750"], ["lv1", "lv2"])
    return Session(feed, sink, "c1", calendar=markethours.ALWAYS, **kw)


def test_frames_in_flight_when_a_stall_is_declared_are_kept() -> None:
    sink = ListSink()
    with run_sim("jvquant", rate=3000, symbols=["600519", "000001", "300750"], ticks_per_second=50) as sim:
        declared = []

        def clock() -> float:
            # once frames flow, declare a stall while more are already on their way to us
            if data_frames(sink) >= 5 and not declared:
                declared.append(True)
                time.sleep(0.3)  # the simulator keeps writing meanwhile
                return time.monotonic() + 1000
            return time.monotonic() + (1000 if declared else 0)

        session = start(sim, sink, stall_seconds=5, clock=clock)
        with pytest.raises(Retry, match="stalled"):
            session._one_session()
        wait_for(lambda: sim.stats()["open_connections"] == 0, what="the simulator seeing the close")
        sent = connection_totals(sim)["frames"]
    assert declared
    assert len(sink.frames) == sent, f"simulator sent {sent} frames, the producer kept {len(sink.frames)}"
    assert data_frames(sink) > 5  # frames arrived after the verdict, and were kept


def test_frames_in_flight_when_stopping_are_kept() -> None:
    sink = ListSink()
    with run_sim("jvquant", rate=3000, symbols=["600519", "000001", "300750"], ticks_per_second=50) as sim:
        holder: list[Session] = []

        def clock() -> float:
            if data_frames(sink) >= 5 and not holder[0].stopping:
                holder[0].stop()
                time.sleep(0.3)
            return time.monotonic()

        holder.append(start(sim, sink, stall_seconds=30, clock=clock))
        holder[0]._one_session()
        wait_for(lambda: sim.stats()["open_connections"] == 0, what="the simulator seeing the close")
        sent = connection_totals(sim)["frames"]
    assert len(sink.frames) == sent, f"simulator sent {sent} frames, the producer kept {len(sink.frames)}"
    assert data_frames(sink) > 5
