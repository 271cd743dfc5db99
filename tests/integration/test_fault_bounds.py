"""Issue 21 item 1 for the simulator faults that exist: each fault's md.status event arrives within
a stated bound, measured from the moment the fault is switched on (real simulator, producer,
processor worker and broker; the bounds are the README's table).

Settings of the run: ``--stall-seconds 3``, ``MARKETPIPE_SUBSCRIPTION_SILENCE=3``,
``--backoff-base 0.3``; the processor's stale limit is its default, max(10 s, 5 x the symbol's
usual interval). Each bound is the mechanism's own delay plus ``SLACK_S`` for a loaded 2-core
machine (a batch of the processor, a Kafka round trip). The muted symbol is a crypto pair on the
Infoway simulator: the processor judges staleness by the symbol's real market hours, and crypto
trades around the clock (an A-share symbol is never stale at night, simulator or not)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest

from marketpipe.simulators.runner import run as run_sim
from tests.support.pipeline import read_topic, start_producer, start_worker, stop_worker, wait_for

STALL_S = 3.0
SILENCE_S = 3.0
BACKOFF_BASE_S = 0.3
STALE_MIN_S = 10.0  # FeedMonitor's min_stale_seconds
SLACK_S = 2.0


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[Any], None]  # the running simulator
    kind: str  # the md.status kind that must follow
    bound_s: float
    match: Callable[[dict[str, Any]], bool] = lambda r: True
    provider: str = "jvquant"


FAULTS = [
    # the connection dies (frames in flight lost): the processor's gap, once the producer reconnected
    Fault("drop", lambda sim: sim.sim.fault("drop"), "gap", BACKOFF_BASE_S + 1.0 + SLACK_S),
    # every data frame sent twice / each two swapped: the processor reads the trade numbers
    Fault("duplicate", lambda sim: sim.sim.fault("duplicate", 0), "duplicate", 1.0 + SLACK_S,
          lambda r: r["symbol"] in ("600519.SH", "000001.SZ")),
    Fault("reorder", lambda sim: sim.sim.fault("reorder", 0), "reordered", 1.0 + SLACK_S,
          lambda r: r["symbol"] in ("600519.SH", "000001.SZ")),
    # the provider moved: the old path answers 404, a new allocation follows
    Fault("restart", lambda sim: sim.sim.fault("restart"), "gap", BACKOFF_BASE_S + 1.0 + SLACK_S),
    # nothing sent while the socket answers pings: the producer calls it stalled
    Fault("stall", lambda sim: sim.sim.fault("stall", 6), "disconnected", STALL_S + 1.0 + SLACK_S,
          lambda r: "stalled" in r["reason"]),
    # one subscription muted, the socket up: the producer re-subscribes it ...
    # (Infoway: its subscribe requests again, paced INFOWAY_SUBSCRIBE_INTERVAL = 0.1 s apart here) ...
    Fault("mute: re-subscribe", lambda sim: sim.sim.fault("mute", 0, symbol="BTCUSDT"), "resubscribed",
          SILENCE_S + 1.0 + SLACK_S, lambda r: r["symbol"] == "BTCUSDT", "infoway"),
    # ... and the processor reports the symbol silent during market hours
    Fault("mute: stale symbol", lambda sim: sim.sim.fault("mute", 0, symbol="BTCUSDT"), "stale",
          STALE_MIN_S + 1.0 + SLACK_S, lambda r: r["symbol"] == "BTCUSDT", "infoway"),
]
CODES = {"jvquant": ["600519", "000001"], "infoway": ["BTCUSDT", "ETHUSDT"]}


@contextmanager
def pipeline(provider: str, env: dict[str, str], tmp_path: Any) -> Iterator[Any]:
    worker = start_worker(env, tmp_path / "worker.log")
    producer = None
    try:
        with run_sim(provider, rate=300, symbols=CODES[provider], api_key="key") as sim:
            addresses = {"JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": "key", "INFOWAY_WS_URL": sim.url,
                         "INFOWAY_API_KEY": "key", "INFOWAY_SUBSCRIBE_INTERVAL": "0.1"}
            penv = {**env, **addresses, "MARKETPIPE_SUBSCRIPTION_SILENCE": str(SILENCE_S)}
            producer = start_producer(penv, provider, tmp_path / "producer.log", "--codes", ",".join(CODES[provider]),
                                      "--market-hours", "always", "--stall-seconds", str(STALL_S),
                                      "--backoff-base", str(BACKOFF_BASE_S), "--connection-id", f"{provider}-fault")
            yield sim
    finally:
        if producer is not None:
            stop_worker(producer)
        stop_worker(worker)


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_each_fault_shows_on_md_status_within_its_bound(fault: Fault, mp_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    with pipeline(fault.provider, mp_env, tmp_path) as sim:
        # the processor is caught up and has learned the symbols' usual intervals (stale needs 5)
        wait_for(lambda: len(read_topic(s, "md.tick", idle=0.5, until=2000, timeout=5)) >= 2000, timeout=120,
                 what="ticks on md.tick")
        injected = time.time() * 1000
        fault.inject(sim)

        seen: list[dict[str, Any]] = []

        def found() -> bool:
            seen[:] = [r for r in read_topic(s, "md.status", idle=0.5, timeout=5)
                       if r["kind"] == fault.kind and r["event_time"] >= injected and fault.match(r)]
            return bool(seen)

        wait_for(found, timeout=fault.bound_s + 60, what=f"{fault.kind} after {fault.name}")
        delay_s = (min(r["event_time"] for r in seen) - injected) / 1000
        print(f"fault bound: {fault.name} -> {fault.kind} in {delay_s:.2f} s (bound {fault.bound_s:.1f} s)")
        assert 0 <= delay_s <= fault.bound_s
