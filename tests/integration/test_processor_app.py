"""The Faust processor as real worker processes on a real broker.

Raw frames are produced with the producer's header contract; outputs are read back with the
codec. Records are compared as sets keyed by ``source`` (raw topic, partition, offset, index),
the documented dedup key, so at-least-once duplicates after a kill cannot hide a loss.
"""

from __future__ import annotations

import signal
import time
import urllib.request

import pytest

from marketpipe import settings as settings_mod
from marketpipe.processors.bars.book import offline_bars
from marketpipe.runtime.localhost import free_port
from marketpipe.simulators.market import shanghai_hms
from tests.support.feeder import Feeder, deflate  # noqa: F401  (deflate: imported from here by other tests)
from tests.support.pipeline import (
    bar_differences,
    final_bars,
    read_topic,
    source_key,
    start_worker,
    stop_worker,
    wait_for,
    wait_for_bars,
)

INTERVAL_MS = 1000


@pytest.fixture
def worker_env(mp_env: dict[str, str], mp_settings: settings_mod.Settings) -> dict[str, str]:
    # a killed worker's partitions move on after 6 s instead of the production 30 s
    return {**mp_env, "MARKETPIPE_PROCESSOR_SESSION_TIMEOUT": "6s"}


def test_frames_become_records_dead_letters_and_bars(worker_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    feed = Feeder(s)
    base = (int(time.time() * 1000) // INTERVAL_MS - 30) * INTERVAL_MS  # 30 s ago, on a bar boundary
    ticks = 0
    for i in range(200):
        feed.trade("iw-1", "BTCUSDT" if i % 2 else "ETHUSDT", 60000 + i, base + i * 25)
        ticks += 1
    # jvQuant: a binary frame with an lv1 snapshot and two lv2 trades, and one with a bad row among good ones
    # rows stamped a few seconds ago in Shanghai time: a fixed clock time would lie hours ahead of
    # the receive time for half of the day, and the decoders rightly refuse that
    t1, t2 = shanghai_hms(int(time.time() * 1000) - 5000), shanghai_hms(int(time.time() * 1000) - 4000)
    lv1 = (f"lv1_600519={t1},贵州茅台,1572.12,1.25,5123456789.00,3258900,300,1572.10,100,1572.05,200,1572.00,"
           "500,1571.99,100,1571.90,200,1572.12,100,1572.20,300,1572.50,100,1572.58,400,1572.60")
    lv2 = f"lv2_600519={t1}.120,1234567,1572.12,100|{t1}.150,1234568,1572.10,200"
    feed.send("jvquant", "jv-1", deflate(lv1 + "\n" + lv2), "binary")
    feed.send("jvquant", "jv-1", deflate(f"lv2_000001={t2}.000,77,11.01,300\nlv2_000001=broken"), "binary")
    feed.send("infoway", "iw-1", b"\xff\xfe not a frame", "binary")
    feed.send("jvquant", "jv-1", b"add ok: 2 codes", "text")  # a command reply: control, no records
    feed.flush()

    log = tmp_path / "worker.log"
    port = free_port()
    proc = start_worker({**worker_env, "MARKETPIPE_METRICS_PORT": str(port)}, log)
    try:
        got_ticks = read_topic(s, "md.tick", until=ticks + 3, idle=15, timeout=120)
        dlq = read_topic(s, "md.dlq", idle=2)
        quotes = read_topic(s, "md.quote", idle=2)
        expected = offline_bars([t for t in got_ticks if t["provider"] == "infoway"], INTERVAL_MS)
        # the idle timer closes the last windows: wait until every expected window has its bar
        wait_for(lambda: expected.keys() <= bar_windows(s), 60, what=lambda: f"bars of windows "
                 f"{sorted(expected.keys() - bar_windows(s))}; log:\n{log.read_text()[-3000:]}")
        wait_for(lambda: not bar_differences(final_bars(
            [b for b in read_topic(s, "md.bar", idle=1) if b["provider"] == "infoway"]), expected), 60,
            what=lambda: "final infoway bars equal to the offline ones")
        bars = read_topic(s, "md.bar", idle=3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            scraped = resp.read().decode()
    finally:
        stop_worker(proc)
    assert f"Prometheus metrics on http://127.0.0.1:{port}/metrics" in log.read_text()
    assert 'marketpipe_processor_frames_total{provider="infoway"} 201.0' in scraped
    assert 'marketpipe_processor_records_total{topic="md.dlq"} 2.0' in scraped
    assert len(got_ticks) == ticks + 3, log.read_text()[-3000:]
    assert len({source_key(t) for t in got_ticks}) == len(got_ticks)
    assert {t["trade_id"] for t in got_ticks if t["provider"] == "jvquant"} == {"1234567", "1234568", "77"}
    assert [q["symbol"] for q in quotes] == ["600519.SH"] and quotes[0]["field_order"] == "amount,volume"
    reasons = sorted(d["reason"] for d in dlq)
    assert len(dlq) == 2, reasons
    assert any(r.startswith("jvquant:") and "row 1" in r for r in reasons)
    assert any(r.startswith("infoway:") for r in reasons)
    raw_bad = next(d for d in dlq if d["provider"] == "infoway")
    assert raw_bad["raw"] == b"\xff\xfe not a frame" and raw_bad["headers"]["connection"] == "iw-1"
    # bars from the pipeline equal bars computed offline from the same ticks
    # (revisions ignored: a window the idle timer closed before a slow batch of its ticks arrived is
    # revised, with the same final values)
    infoway_bars = [b for b in bars if b["provider"] == "infoway"]
    assert bar_differences(final_bars(infoway_bars), expected) == [], log.read_text()[-3000:]


def bar_windows(s: settings_mod.Settings) -> set[tuple[str, str, int]]:
    """(provider, symbol, window start) of every bar on md.bar so far."""
    return set(final_bars(read_topic(s, "md.bar", idle=1)))


def test_late_tick_corrects_an_emitted_bar(worker_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    feed = Feeder(s)
    base = (int(time.time() * 1000) // INTERVAL_MS - 60) * INTERVAL_MS
    for i in range(40):
        feed.trade("iw-1", "BTCUSDT", 100 + i, base + i * 100)  # 4 windows
    feed.flush()
    log = tmp_path / "worker.log"
    proc = start_worker(worker_env, log, "--bar-horizon", "1h")
    try:
        first = read_topic(s, "md.bar", until=4, idle=8)
        feed.trade("iw-1", "BTCUSDT", 999, base + 150)  # late, inside the first (already emitted) window
        feed.flush()
        wait_for(lambda: any(b["revision"] > 0 for b in read_topic(s, "md.bar", idle=1)), 60,
                 what=lambda: f"a corrected bar (revision > 0); log:\n{log.read_text()[-2000:]}")
        bars = read_topic(s, "md.bar", idle=3)
        ticks = read_topic(s, "md.tick", idle=2)
    finally:
        stop_worker(proc)
    assert len(first) == 4, log.read_text()[-2000:]
    corrections = [b for b in bars if b["revision"] > 0]
    assert len(corrections) == 1 and corrections[0]["window_start"] == base
    assert corrections[0]["high"] == 999 and corrections[0]["trade_count"] == 11
    assert final_bars(bars) == {k: {**v, "revision": final_bars(bars)[k]["revision"]}
                                for k, v in offline_bars(ticks, INTERVAL_MS).items()}


def test_kill_9_and_restart_lose_nothing_and_windows_still_close(worker_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    feed = Feeder(s)
    base = (int(time.time() * 1000) // INTERVAL_MS - 200) * INTERVAL_MS
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    n = 20000
    for i in range(n):
        feed.trade(f"iw-{i % 4}", symbols[i % 3], 100 + i % 50, base + i * 5)
    feed.flush()
    log = tmp_path / "worker.log"
    proc = start_worker(worker_env, log)
    wait_for(lambda: len(read_topic(s, "md.tick", idle=0.3, until=500, timeout=5)) >= 500, 60, step=0.1,
             what=lambda: f"500 ticks before the kill; log:\n{log.read_text()[-2000:]}")
    stop_worker(proc, signal.SIGKILL)  # mid-stream, no goodbye
    seen_at_kill = len(read_topic(s, "md.tick", idle=0.5))
    # more ticks while it is down, so the restarted worker has to do real work
    m = 3000
    for i in range(n, n + m):
        feed.trade(f"iw-{i % 4}", symbols[i % 3], 100 + i % 50, base + i * 5)
    feed.flush()
    proc = start_worker(worker_env, log)
    try:
        ticks = read_topic(s, "md.tick", until=n + m + seen_at_kill, idle=10, timeout=180)
        unique = {source_key(t): t for t in ticks}
        diff = wait_for_bars(s, offline_bars(list(unique.values()), INTERVAL_MS))
    finally:
        stop_worker(proc)
    assert 0 < seen_at_kill < n + m, "the kill was not mid-stream"
    assert len(unique) == n + m, f"{n + m - len(unique)} records lost; log:\n{log.read_text()[-2000:]}"
    # at-least-once: a replayed frame yields byte-identical records with the same source: dedup by it
    assert all(t == unique[source_key(t)] for t in ticks)
    assert diff == [], log.read_text()[-3000:]


def test_a_bars_only_worker_killed_mid_stream_and_restarted_gives_the_offline_bars(worker_env, mp_settings,
                                                                                   tmp_path) -> None:
    """A bars-only deployment (``--agents bars``, scaled apart from normalize) takes md.tick per
    fetch and acknowledges a fetch only after its bars were flushed: SIGKILLed alone while the
    normalize worker runs on, its replacement reads again what was not acknowledged, and the final
    bars equal the offline ones."""
    s = mp_settings
    feed = Feeder(s)
    base = (int(time.time() * 1000) // INTERVAL_MS - 300) * INTERVAL_MS
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    n = 30000

    def trades(first: int, last: int) -> None:
        for i in range(first, last):
            feed.trade(f"iw-{i % 4}", symbols[i % 3], 100 + i % 50, base + i * 10)
        feed.flush()

    trades(0, n // 2)
    normalize = start_worker({**worker_env, "MARKETPIPE_PROCESSOR_AGENTS": "normalize"}, tmp_path / "normalize.log")
    bars_log = tmp_path / "bars.log"
    bars_env = {**worker_env, "MARKETPIPE_PROCESSOR_AGENTS": "bars"}
    try:
        bars = start_worker(bars_env, bars_log)
        wait_for(lambda: len(bar_windows(s)) >= 20, 90, step=0.1,
                 what=lambda: f"20 bars before the kill; log:\n{bars_log.read_text()[-2000:]}")
        stop_worker(bars, signal.SIGKILL)  # the bars worker itself, no goodbye
        at_kill = len(bar_windows(s))
        trades(n // 2, n)  # the second half arrives while it is down
        bars = start_worker(bars_env, bars_log)
        try:
            ticks = read_topic(s, "md.tick", until=n, idle=10, timeout=180)
            unique = {source_key(t): t for t in ticks}
            expected = offline_bars(list(unique.values()), INTERVAL_MS)
            diff = wait_for_bars(s, expected)
        finally:
            stop_worker(bars)
    finally:
        stop_worker(normalize)
    assert len(unique) == n
    assert 0 < at_kill < len(expected), f"the kill was not mid-stream: {at_kill} of {len(expected)} bars"
    assert diff == [], bars_log.read_text()[-3000:]


def test_two_workers_split_the_work_and_agree_with_one(worker_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    feed = Feeder(s)
    base = (int(time.time() * 1000) // INTERVAL_MS - 200) * INTERVAL_MS
    n = 2000
    for i in range(n):
        feed.trade(f"iw-{i % 6}", f"SYM{i % 5}USDT", 10 + i % 7, base + i * 10)
    feed.flush()
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers = [start_worker(worker_env, logs[0]), start_worker(worker_env, logs[1])]
    try:
        ticks = read_topic(s, "md.tick", until=n, idle=5, timeout=120)
        unique = {source_key(t): t for t in ticks}
        diff = wait_for_bars(s, offline_bars(list(unique.values()), INTERVAL_MS))
        suffix = s.topic_prefix.rstrip(".")
        normalizers = group_assignments(s, f"marketpipe-processors-normalize-{suffix}")
        binners = group_assignments(s, f"marketpipe-processors-bars-{suffix}")
    finally:
        for w in workers:
            stop_worker(w)
    assert len(unique) == n
    assert diff == [], logs[0].read_text()[-2000:] + logs[1].read_text()[-2000:]
    # both deployments took part: each (a normalize and a bars worker by default) is a member of
    # both groups, normalizers owning raw partitions and binners md.tick partitions, none shared
    assert len(normalizers) == 2 and len(binners) == 2, (normalizers, binners)
    for owned in normalizers:
        assert any(t.endswith("raw.infoway") for t, _ in owned), normalizers
    for owned in binners:
        assert any(t.endswith("md.tick") for t, _ in owned), binners
    assert not set(normalizers[0]) & set(normalizers[1]) and not set(binners[0]) & set(binners[1])


def group_assignments(s: settings_mod.Settings, group: str, expect: int = 2) -> list[set[tuple[str, int]]]:
    """The partitions each member of a consumer group holds, from the group coordinator."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(s.kafka.client_config())
    deadline = time.monotonic() + 60
    while True:
        desc = admin.describe_consumer_groups([group])[group].result(30)
        members = [{(tp.topic, tp.partition) for tp in m.assignment.topic_partitions} for m in desc.members]
        if (len(members) == expect and all(members) and str(desc.state).endswith("STABLE")) \
                or time.monotonic() > deadline:
            return members
        time.sleep(1)  # the polling step of this wait loop


def test_process_without_topics_says_how_to_create_them(mp_env) -> None:
    import subprocess
    import sys
    import uuid

    env = {**mp_env, "MARKETPIPE_TOPIC_PREFIX": f"absent{uuid.uuid4().hex[:6]}."}
    run = subprocess.run([sys.executable, "-m", "marketpipe", "process"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2
    assert "md.tick" in run.stderr and "marketpipe topics create" in run.stderr


def test_normalize_and_bars_can_run_as_separate_workers(worker_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    feed = Feeder(s)
    base = (int(time.time() * 1000) // INTERVAL_MS - 100) * INTERVAL_MS
    n = 600
    for i in range(n):
        feed.trade(f"iw-{i % 3}", ["BTCUSDT", "ETHUSDT"][i % 2], 50 + i % 9, base + i * 20)
    feed.flush()
    normalize = start_worker(worker_env, tmp_path / "normalize.log", "--agents", "normalize")
    bars_only = start_worker(worker_env, tmp_path / "bars.log", "--agents", "bars")
    try:
        ticks = read_topic(s, "md.tick", until=n, idle=5, timeout=120)
        unique = {source_key(t): t for t in ticks}
        diff = wait_for_bars(s, offline_bars(list(unique.values()), INTERVAL_MS))
        groups = (group_assignments(s, f"marketpipe-processors-normalize-{s.topic_prefix.rstrip('.')}", 1),
                  group_assignments(s, f"marketpipe-processors-bars-{s.topic_prefix.rstrip('.')}", 1))
    finally:
        stop_worker(normalize)
        stop_worker(bars_only)
    assert len(unique) == n and diff == []
    ours = s.topic_prefix  # Faust also assigns its own internal __assignor topic
    normalize_topics = {t for member in groups[0] for t, _ in member if t.startswith(ours)}
    bar_topics = {t for member in groups[1] for t, _ in member if t.startswith(ours)}
    assert {t.rsplit(".", 1)[-1] for t in normalize_topics} == {"jvquant", "infoway", "jin10"}
    assert bar_topics == {s.topic("md.tick")}
