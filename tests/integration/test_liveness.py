"""Liveness per subscription on real processes: a jvQuant simulator mutes one code while the socket
stays up and answers pings; the real producer re-subscribes it, then recycles the connection,
and both actions reach md.status on a real broker within the stated bound."""

from __future__ import annotations

import time
from typing import Any

from marketpipe.simulators.runner import run as run_sim
from tests.support.pipeline import read_topic, start_producer, stop_worker, wait_for

LIMIT_S = 3.0  # MARKETPIPE_SUBSCRIPTION_SILENCE below; both codes trade many times a second here
#: the bounds of marketpipe/producers/liveness.py from the last frame of the code: limit + 1 s to
#: the re-subscribe, 2 x limit + 2 s to the recycle
RESUBSCRIBE_BOUND_MS = (LIMIT_S + 1.0) * 1000
RECYCLE_BOUND_MS = (2 * LIMIT_S + 2.0) * 1000
#: the producer's receive time of the last frame before the mute trails the mute by at most one
#: push tick (50 ms) plus delivery; a loaded 2-core machine gets a second of slack for that
SLACK_MS = 1000


def actions(s: Any) -> list[dict[str, Any]]:
    return [r for r in read_topic(s, "md.status", idle=1) if r["provider"] == "jvquant"]


def test_a_muted_subscription_is_resubscribed_then_its_connection_recycled(mp_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    with run_sim("jvquant", rate=300, symbols=["600519", "000001"]) as sim:
        env = {**mp_env, "JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": "tok",
               "MARKETPIPE_SUBSCRIPTION_SILENCE": str(LIMIT_S)}
        producer = start_producer(env, "jvquant", tmp_path / "producer.log", "--codes", "600519,000001",
                                  "--levels", "lv1,lv2", "--market-hours", "always", "--connection-id", "jv-live-1",
                                  "--backoff-base", "0.2")
        try:
            wait_for(lambda: sim.stats()["totals"].get("data_frames", 0) > 60, timeout=60, what="frames flowing")
            muted_at = time.time() * 1000
            sim.sim.fault("mute", 0, symbol="600519")
            wait_for(lambda: "recycled" in [r["kind"] for r in actions(s)], timeout=60,
                     what=lambda: f"a recycle on md.status: {[r['kind'] for r in actions(s)]}")
            recs = actions(s)
            resub = next(r for r in recs if r["kind"] == "resubscribed")
            recycle = next(r for r in recs if r["kind"] == "recycled")
            assert resub["symbol"] == recycle["symbol"] == "600519" and resub["connection"] == "jv-live-1"
            print(f"liveness: resubscribed after {resub['silent_ms']} ms of silence "
                  f"({resub['event_time'] - muted_at:.0f} ms after the mute), recycled after {recycle['silent_ms']} ms "
                  f"({recycle['event_time'] - muted_at:.0f} ms after the mute); limit {LIMIT_S:g} s")
            # the producer's own measure: its silence when it acted
            assert LIMIT_S * 1000 < resub["silent_ms"] <= RESUBSCRIBE_BOUND_MS
            assert 2 * LIMIT_S * 1000 < recycle["silent_ms"] <= RECYCLE_BOUND_MS
            # and on the wall clock, from the moment the simulator muted it
            assert resub["event_time"] - muted_at <= RESUBSCRIBE_BOUND_MS + SLACK_MS
            assert recycle["event_time"] - muted_at <= RECYCLE_BOUND_MS + SLACK_MS
            # the other code kept the connection busy the whole time: only the liveness watch acted
            kinds = [(r["kind"], r["session"]) for r in recs if r["kind"] in ("connected", "disconnected")]
            assert kinds[:3] == [("connected", 1), ("disconnected", 1), ("connected", 2)]
            assert "600519 silent" in next(r for r in recs if r["kind"] == "disconnected")["reason"]

            # still muted in the new session: re-subscribed again, never recycled again
            wait_for(lambda: sum(r["kind"] == "resubscribed" and r["session"] == 2 for r in actions(s)) >= 2,
                     timeout=30, what="re-subscribes in session 2")
            assert [r["kind"] for r in actions(s)].count("recycled") == 1
            assert sim.stats()["open_connections"] == 1
        finally:
            stop_worker(producer)
