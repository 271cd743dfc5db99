"""End-to-end latency of the processor: producer receive time → record readable on md.tick.

    .venv/bin/python bench/bench_latency.py [--quick] [--runs N] [--loaded] [--json F]   (or: make bench)

Each cell is one worker set-up at one input rate, run ``--runs`` times (3; a fresh worker each
time, ``BENCH_LATENCY_SECONDS`` (15 s) measured after a 3 s warm-up); the table gives p50 (median of
the runs) and p99 as min / median / **max** of the runs: the max is the figure to quote. The runs
are interleaved, each round starting with the next set-up, after one unmeasured run per rate that
the newly started broker needs to warm up (``--quick`` skips it). Set-ups (``BENCH_PROFILES``,
comma-separated ``profile[:agents]``):

* ``default``: ``marketpipe process`` with nothing set, what users, ``make demo`` and compose get;
* ``latency`` / ``throughput``: ``MARKETPIPE_PROCESSOR_PROFILE``; ``:all``, ``:normalize``,
  ``:split`` set ``MARKETPIPE_PROCESSOR_AGENTS`` (``all`` = normalize and bars in one process);
* ``baseline``: the default worker of the source tree ``BENCH_BASELINE`` names, in the same run.

``BENCH_RATES=infoway`` (or ``jvquant``) runs one of the two rates only. ``BENCH_TRACE=F`` appends
every measured tick (rate, seconds into the window, latency ms, receive time as epoch seconds)
to ``F``, to see when the tail happens.

Input rates:

* 1,000 frames/s of Infoway trades (one tick per JSON frame, dated within the second before);
* 10,000 records/s as 1,000 jvQuant level-2 frames/s of 10 trades each (raw DEFLATE).

Frames are written with the producers' own Kafka settings (idempotent, ``acks=all``, lz4,
``linger.ms=5``) and their ``recv_ns`` header stamped the moment each frame is handed to the
producer, as ``marketpipe produce`` stamps a websocket frame on receipt. A reader in this process
assigns itself md.tick at its end, notes the wall time each record arrives, and decodes the
records afterwards (so decoding does not delay the next read); latency = arrival time −
``receive_time_ns`` of the record. ``--loaded`` runs two CPU-bound processes beside it all, as a
busy host would. Worker CPU and RSS add up every process of the set-up.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ROOT,
    broker,
    env_for,
    fresh_settings,
    load_line,
    percentile,
    process_tree,
    tree_cpu_seconds,
    wait_until,
    write_json,
)

from marketpipe.kafka.clients import durable_producer_config, readable_now
from marketpipe.rawframe import RawMeta  # noqa: E402

#: (name, provider, ticks per frame, frames per second)
RATES = (("1,000 frames/s", "infoway", 1, 1000), ("10,000 records/s", "jvquant", 10, 1000))


def frame_pool(provider: str, per_frame: int, n: int = 500) -> list[bytes]:
    """Distinct frames to cycle through (generating them at send time would slow the sender)."""
    import bench_decode as bd

    now_ms = int(time.time() * 1000)  # frames are received now: their times must be plausible now
    if provider == "infoway":
        return [bd.iw_trade(now_ms, spread_ms=1000).encode() for _ in range(n)]
    minute = bd.minute_before(now_ms)
    rows = []
    for _ in range(n):
        rows.append(bd.deflate("\n".join(
            f"lv2_{600000 + bd.rng.randint(0, 999):06d}={minute}:{bd.rng.randint(0, 59):02d}."
            f"{bd.rng.randint(0, 999):03d},{bd.rng.randint(10**6, 10**7)},{bd.rng.uniform(5, 200):.2f},"
            f"{bd.rng.randint(1, 50) * 100}" for _ in range(per_frame))))
    return rows


def rss(pid: int) -> float:
    """Resident memory of a process and its descendants, MB (after the measured window)."""
    total = 0.0
    for p in process_tree(pid):
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def run_rate(s: Any, name: str, provider: str, per_frame: int, fps: int, seconds: float,
             worker_pid: int) -> dict[str, Any]:
    from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

    from marketpipe.schemas.codec import Codec

    pool = frame_pool(provider, per_frame)
    opcode = "binary" if provider == "jvquant" else "text"
    topic = s.topic(f"raw.{provider}")
    producer = Producer(durable_producer_config(s.kafka.client_config(), {"compression.type": "lz4", "linger.ms": 5}))
    tick = s.topic("md.tick")
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"bench-lat-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 5})
    parts = consumer.list_topics(tick, timeout=10).topics[tick].partitions
    consumer.assign([TopicPartition(tick, p, OFFSET_END) for p in parts])
    arrived: list[tuple[int, bytes]] = []
    seq = {"n": 0}

    def send(n: int) -> None:
        for _ in range(n):
            seq["n"] += 1
            meta = RawMeta(provider, "lat-1", seq["n"], 1, time.time_ns(), opcode, "data")
            producer.produce(topic, key=b"lat-1", value=pool[seq["n"] % len(pool)], headers=meta.headers())
        producer.poll(0)

    def drain(keep: bool) -> int:
        msgs = readable_now(consumer, 0.002)  # stamped as they become readable
        now = time.time_ns()
        got = 0
        for m in msgs:
            if not m.error():
                got += 1
                if keep:
                    arrived.append((now, m.value()))
        return got

    # The reader keeps every arrival: the collector stays off meanwhile, so that its passes over the
    # growing list cannot pause this loop and count as the worker's latency.
    gc.disable()
    try:
        deadline = time.monotonic() + 120  # until the worker answers (start-up, group join)
        while time.monotonic() < deadline:
            send(1)
            producer.flush(5)
            if wait_until(lambda: drain(False) > 0, 1.0, 0.01):
                break
        else:
            raise RuntimeError(f"{name}: the worker wrote nothing to md.tick in 120 s")
        warm = time.monotonic() + min(3.0, seconds)  # warm-up at the target rate, not counted
        start, sent = time.monotonic(), 0
        cpu0 = None
        while True:
            now = time.monotonic()
            if cpu0 is None and now >= warm:
                cpu0, counted_from, sent_before = tree_cpu_seconds(worker_pid), now, sent
                counted_from_ns = time.time_ns()  # ticks of frames sent before this are warm-up backlog
                drain(False)
            if cpu0 is not None and now - counted_from >= seconds:
                break
            due = int((now - start) * fps)
            if due > sent:
                send(due - sent)
                sent = due
            drain(cpu0 is not None)
        cpu1 = tree_cpu_seconds(worker_pid)
        rss_mb = rss(worker_pid)
        expected = (sent - sent_before) * per_frame
        producer.flush(10)
        end = time.monotonic() + 10
        while len(arrived) < expected and time.monotonic() < end:
            drain(True)
    finally:
        gc.enable()
        consumer.close()
    codec = Codec()
    received = [(at, codec.decode(v).record["receive_time_ns"]) for at, v in arrived]
    lat = sorted((at - recv) / 1e6 for at, recv in received if recv >= counted_from_ns)
    trace = os.environ.get("BENCH_TRACE")
    if trace:  # receive time (s into the window) and latency of every tick: where the tail comes from
        with open(trace, "a") as fh:
            fh.writelines(f"{name}\t{(recv - counted_from_ns) / 1e9:.4f}\t{(at - recv) / 1e6:.2f}\t{recv / 1e9:.3f}\n"
                          for at, recv in received if recv >= counted_from_ns)
    if not lat:
        raise RuntimeError(f"{name}: no tick arrived in the measured window")
    return {"rate": name, "provider": provider, "frames_per_s": fps, "records_per_s": fps * per_frame,
            "seconds": seconds, "expected": expected, "got": len(lat),
            "p50": percentile(lat, 0.5), "p90": percentile(lat, 0.9), "p99": percentile(lat, 0.99),
            "max": lat[-1], "worker_cpu": (cpu1 - cpu0) / seconds, "rss_mb": rss_mb, "load": os.getloadavg()[0]}


def worker_env(bootstrap: str, prefix: str, home: Path, setup: str) -> tuple[dict[str, str], Path]:
    """The environment and working directory of a set-up's ``marketpipe process``."""
    env, cwd = env_for(bootstrap, prefix, home), ROOT
    profile, _, agents = setup.partition(":")
    if profile == "baseline":  # the worker of another source tree, as it runs by default
        cwd = Path(os.environ["BENCH_BASELINE"])
        env["PYTHONPATH"] = str(cwd)
    elif profile != "default":
        env["MARKETPIPE_PROCESSOR_PROFILE"] = profile
    if agents:
        env["MARKETPIPE_PROCESSOR_AGENTS"] = agents
    return env, cwd


def run_once(bootstrap: str, home: Path, setup: str, rate: tuple[str, str, int, int], seconds: float,
             run: int) -> dict[str, Any]:
    name, provider, per_frame, fps = rate
    s = fresh_settings(bootstrap, "lat")
    here = home / f"{setup.replace(':', '-')}-{provider}-{run}"
    env, cwd = worker_env(bootstrap, s.topic_prefix, here, setup)
    log = home / f"worker-{here.name}.log"
    proc = subprocess.Popen([sys.executable, "-m", "marketpipe", "--log-level", "WARNING", "process"], env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=cwd)
    try:
        print(f"{setup}: {name}, run {run}, {seconds:.0f} s ... ({load_line()})", flush=True)
        row = run_rate(s, name, provider, per_frame, fps, seconds, proc.pid)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{log.read_text()[-2000:]}") from None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    row.update(profile=setup, run=run)
    return row


def cells(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per (set-up, rate): p99 as min / median / max of its runs."""
    out = []
    for key in dict.fromkeys((r["profile"], r["rate"]) for r in rows):
        runs = [r for r in rows if (r["profile"], r["rate"]) == key]
        p99 = sorted(r["p99"] for r in runs)
        out.append({"profile": key[0], "rate": key[1], "runs": len(runs), "p50": statistics.median(r["p50"] for r in runs),
                    "p99_min": p99[0], "p99_median": statistics.median(p99), "p99_max": p99[-1],
                    "max": max(r["max"] for r in runs), "worker_cpu": statistics.median(r["worker_cpu"] for r in runs),
                    "load_min": min(r["load"] for r in runs), "load_max": max(r["load"] for r in runs)})
    return out


@contextlib.contextmanager
def hogs(n: int) -> Iterator[None]:
    """``n`` CPU-bound processes for the duration (``--loaded``)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="receive time -> readable on md.tick, per worker set-up and input rate")
    ap.add_argument("--quick", action="store_true", help="one 2 s run per cell: checks that it works")
    ap.add_argument("--runs", type=int, help="runs per cell, each with a fresh worker (default 3; 1 with --quick)")
    ap.add_argument("--loaded", action="store_true", help="two CPU-bound processes run beside the benchmark")
    ap.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = ap.parse_args(argv)
    seconds = 2.0 if args.quick else float(os.environ.get("BENCH_LATENCY_SECONDS", "15"))
    runs = args.runs or (1 if args.quick else 3)
    default = ("default,throughput" if args.quick else "default,throughput,latency:all") + (
        ",baseline" if os.environ.get("BENCH_BASELINE") else "")
    setups = [p for p in os.environ.get("BENCH_PROFILES", default).split(",") if p]
    rates = [r for r in RATES if r[1] in os.environ.get("BENCH_RATES", "infoway,jvquant").split(",")]
    rows: list[dict[str, Any]] = []
    with broker() as bootstrap, tempfile.TemporaryDirectory(prefix="mp-bench-lat-") as tmp, \
            hogs(2 if args.loaded else 0):
        if not args.quick:
            # A broker just started is slow for its first minute or so (its JIT at work): the first
            # cells after it paid that, and the first set-up, always the default, paid it most.
            for rate in rates:
                print("warm-up, not measured:", end=" ")
                run_once(bootstrap, Path(tmp), setups[0], rate, seconds, 0)
        for run in range(1, runs + 1):
            # interleaved, so a slow minute of the machine hits every set-up; rotated, so no set-up
            # always runs first
            turn = (run - 1) % len(setups)
            for setup in setups[turn:] + setups[:turn]:
                for rate in rates:
                    rows.append(run_once(bootstrap, Path(tmp), setup, rate, seconds, run))
    summary = cells(rows)
    print()
    print(f"{'set-up':<18} {'input':<17} {'runs':>4} {'p50 ms':>7} {'p99 ms min / median / max':>27} "
          f"{'max ms':>7} {'CPU':>5} {'load':>9}")
    for c in summary:
        p99 = f"{c['p99_min']:.1f} / {c['p99_median']:.1f} / {c['p99_max']:.1f}"
        print(f"{c['profile']:<18} {c['rate']:<17} {c['runs']:>4} {c['p50']:>7.1f} {p99:>27} {c['max']:>7.1f} "
              f"{c['worker_cpu']:>5.0%} {c['load_min']:>4.1f}-{c['load_max']:<4.1f}")
    print(f"(producer receive-time header -> record read from md.tick, {seconds:.0f} s per run"
          f"{', two CPU hogs beside it' if args.loaded else ''}; quote the max of p99; "
          "targets p99 < 20 ms at 1,000 frames/s, < 50 ms at 10,000 records/s)")
    print(load_line())
    write_json(args.json, {"quick": args.quick, "loaded": args.loaded, "rows": rows, "cells": summary,
                           "load": os.getloadavg()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
