"""The whole market-data path with real processes: simulators → producers → raw topics →
processor → md.* → bars, with each process kind restarted during the run.

What the simulators recorded as sent is the reference: every trade appears in ``md.tick``
exactly once after deduplication by ``source`` (duplicates are possible only from the processor's
at-least-once replay after a kill -9, and are byte-identical), and the bars on ``md.bar`` equal bars
computed offline from those ticks. Orders through the trader are covered end to end in
``test_trade_consumer.py`` (signed command → trader → simulated broker → fills on order.events).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Any

from marketpipe.processors.bars.book import offline_bars
from marketpipe.simulators.runner import run as run_sim
from tests.support.pipeline import (
    quiesce,
    read_topic,
    sent_trade_ids,
    source_key,
    start_producer,
    start_worker,
    stop_worker,
    wait_for,
    wait_for_bars,
)

JV_CODES = ["600519", "000001", "300750", "688981"]
IW_CODES = ["BTCUSDT", "ETHUSDT"]


def distinct_ticks(s: Any, n: int, timeout: float = 120.0) -> tuple[list[dict[str, Any]], dict[Any, dict[str, Any]]]:
    """md.tick read again until it holds ``n`` distinct trades (a duplicate replayed after the kill
    counts once, so it cannot end the read early), or ``timeout``: all its records, and by source."""
    deadline = time.monotonic() + timeout
    while True:  # each read lasts at least its idle second: that paces the polling
        ticks = read_topic(s, "md.tick", idle=1)
        unique = {source_key(t): t for t in ticks}
        if len(unique) >= n or time.monotonic() > deadline:
            return ticks, unique


def test_simulated_trades_reach_md_tick_once_and_bars_match_through_restarts(mp_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    env = {**mp_env, "MARKETPIPE_PROCESSOR_SESSION_TIMEOUT": "6s"}
    jv_record, iw_record = tmp_path / "jv.jsonl", tmp_path / "iw.jsonl"
    logs = {name: tmp_path / f"{name}.log" for name in ("jv", "iw", "proc")}
    with run_sim("jvquant", rate=300, symbols=JV_CODES, record=jv_record) as jv, \
            run_sim("infoway", rate=150, symbols=IW_CODES, record=iw_record, api_key="key") as iw:
        jv_env = {**env, "JVQUANT_BASE_URL": jv.base_url, "JVQUANT_TOKEN": "tok"}
        iw_env = {**env, "INFOWAY_WS_URL": iw.url, "INFOWAY_API_KEY": "key"}
        jv_args = ("--codes", ",".join(JV_CODES), "--levels", "lv1,lv2", "--backoff-base", "0.1")
        producers = {"jv": start_producer(jv_env, "jvquant", logs["jv"], *jv_args),
                     "iw": start_producer(iw_env, "infoway", logs["iw"], "--codes", ",".join(IW_CODES))}
        worker = start_worker(env, logs["proc"])
        try:
            wait_for(lambda: len(read_topic(s, "md.tick", idle=0.3, timeout=2)) > 200, timeout=60)
            stop_worker(worker, signal.SIGKILL)  # the processor dies mid-stream (waits until it is gone) ...
            worker = start_worker(env, logs["proc"])  # ... and a new one takes over its offsets
            wait_for(lambda: jv.stats()["totals"].get("trades", 0) > 1500, timeout=60)
            # a producer is restarted (rolling update): SIGTERM flushes what it holds, the new one
            # allocates a server and subscribes again. The feed is paused around the stop because a
            # frame the provider writes while the client is closing is lost by any client.
            quiesce(jv, s)
            stop_worker(producers["jv"])
            assert producers["jv"].returncode == 0, logs["jv"].read_text()[-2000:]
            producers["jv"] = start_producer(jv_env, "jvquant", logs["jv"], *jv_args)
            jv.sim.fault("clear")
            wait_for(lambda: len(jv.stats()["per_connection"]) >= 2)
            wait_for(lambda: jv.stats()["totals"].get("trades", 0) > 3000, timeout=60)
            jv_stats, iw_stats = quiesce(jv, s), quiesce(iw, s)
            for proc in producers.values():
                stop_worker(proc)
            sent_jv = sent_trade_ids(jv_record)
            sent_iw = iw_stats["totals"]["trades"]
            ticks, unique = distinct_ticks(s, sum(sent_jv.values()) + sent_iw)
            diff = wait_for_bars(s, offline_bars(list(unique.values()), 1000))
            quotes = read_topic(s, "md.quote", idle=2)
            dlq = read_topic(s, "md.dlq", idle=1)
        finally:
            stop_worker(worker)
            for proc in producers.values():
                stop_worker(proc)
    assert jv_stats["totals"]["trades"] == sum(sent_jv.values())
    got_jv = Counter(f"{t['venue_symbol']}:{t['trade_id']}" for t in unique.values() if t["provider"] == "jvquant")
    assert got_jv == sent_jv, f"missing {sum((sent_jv - got_jv).values())}, extra {sum((got_jv - sent_jv).values())}"
    assert sum(1 for t in unique.values() if t["provider"] == "infoway") == sent_iw
    assert all(t == unique[source_key(t)] for t in ticks)  # replays are exact copies
    assert {t["symbol"] for t in unique.values()} == {"600519.SH", "000001.SZ", "300750.SZ", "688981.SH",
                                                      "BTCUSDT", "ETHUSDT"}
    assert {q["symbol"] for q in quotes} == {"600519.SH", "000001.SZ", "300750.SZ", "688981.SH"}
    assert all(q["interval_volume"] is None or q["interval_volume"] >= 0 for q in quotes)
    assert dlq == []
    assert diff == [], logs["proc"].read_text()[-3000:]
