"""End-to-end latency of one processor worker: producer receive time → record readable on md.tick.

    .venv/bin/python bench/bench_latency.py [--quick] [--json F]      (or: make bench)

One worker (``marketpipe process``, the default deployment: normalize and bar agents in one
process) per processor profile (``MARKETPIPE_PROCESSOR_PROFILE``; ``BENCH_PROFILES`` picks them,
default ``latency,throughput``, plus ``baseline`` when ``BENCH_BASELINE`` names another source tree
whose worker is then measured in the same run; ``latency:normalize`` = a worker without the bar
agent, as a split deployment runs it, ``baseline:normalize`` the same of the other tree), at two
input rates, each for ``BENCH_LATENCY_SECONDS`` (15 s):

* 1,000 frames/s of Infoway trades (one tick per JSON frame);
* 10,000 records/s as 1,000 jvQuant level-2 frames/s of 10 trades each (raw DEFLATE).

Frames are written with the producers' own Kafka settings (idempotent, ``acks=all``, lz4,
``linger.ms=5``) and their ``recv_ns`` header stamped the moment each frame is handed to the
producer, as ``marketpipe produce`` stamps a websocket frame on receipt. A reader in this process
assigns itself md.tick at its end, notes the wall time each record arrives, and decodes the
records afterwards (so decoding does not delay the next read); latency = arrival time −
``receive_time_ns`` of the record. p50/p90/p99/max over every tick of the window; the first
seconds after the worker answers are a warm-up and not counted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, broker, cpu_seconds, env_for, fresh_settings, load_line, options, percentile, wait_until, write_json  # noqa: E402

from marketpipe.kafka.clients import durable_producer_config
from marketpipe.rawframe import RawMeta  # noqa: E402

#: (name, provider, ticks per frame, frames per second)
RATES = (("1,000 frames/s", "infoway", 1, 1000), ("10,000 records/s", "jvquant", 10, 1000))


def frame_pool(provider: str, per_frame: int, n: int = 500) -> list[bytes]:
    """Distinct frames to cycle through (generating them at send time would slow the sender)."""
    import bench_decode as bd

    now_ms = int(time.time() * 1000)  # frames are received now: their times must be plausible now
    if provider == "infoway":
        return [bd.iw_trade(now_ms).encode() for _ in range(n)]
    minute = bd.minute_before(now_ms)
    rows = []
    for _ in range(n):
        rows.append(bd.deflate("\n".join(
            f"lv2_{600000 + bd.rng.randint(0, 999):06d}={minute}:{bd.rng.randint(0, 59):02d}."
            f"{bd.rng.randint(0, 999):03d},{bd.rng.randint(10**6, 10**7)},{bd.rng.uniform(5, 200):.2f},"
            f"{bd.rng.randint(1, 50) * 100}" for _ in range(per_frame))))
    return rows


def rss(pid: int) -> float:
    """Resident memory of a process, MB (the worker's steady state after the measured window)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


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
        msgs = consumer.consume(1000, timeout=0.002)
        now = time.time_ns()
        got = 0
        for m in msgs:
            if not m.error():
                got += 1
                if keep:
                    arrived.append((now, m.value()))
        return got

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
                cpu0, counted_from, sent_before = cpu_seconds(worker_pid), now, sent
                counted_from_ns = time.time_ns()  # ticks of frames sent before this are warm-up backlog
                drain(False)
            if cpu0 is not None and now - counted_from >= seconds:
                break
            due = int((now - start) * fps)
            if due > sent:
                send(due - sent)
                sent = due
            drain(cpu0 is not None)
        cpu1 = cpu_seconds(worker_pid)
        rss_mb = rss(worker_pid)
        expected = (sent - sent_before) * per_frame
        producer.flush(10)
        end = time.monotonic() + 10
        while len(arrived) < expected and time.monotonic() < end:
            drain(True)
    finally:
        consumer.close()
    codec = Codec()
    received = [(at, codec.decode(v).record["receive_time_ns"]) for at, v in arrived]
    lat = sorted((at - recv) / 1e6 for at, recv in received if recv >= counted_from_ns)
    if not lat:
        raise RuntimeError(f"{name}: no tick arrived in the measured window")
    return {"rate": name, "provider": provider, "frames_per_s": fps, "records_per_s": fps * per_frame,
            "seconds": seconds, "expected": expected, "got": len(lat),
            "p50": percentile(lat, 0.5), "p90": percentile(lat, 0.9), "p99": percentile(lat, 0.99),
            "max": lat[-1], "worker_cpu": (cpu1 - cpu0) / seconds, "rss_mb": rss_mb, "load": os.getloadavg()[0]}


def run_profile(bootstrap: str, home: Path, profile: str, seconds: float) -> list[dict[str, Any]]:
    rows = []
    for name, provider, per_frame, fps in RATES:
        s = fresh_settings(bootstrap, "lat")
        env = env_for(bootstrap, s.topic_prefix, home / f"{profile}-{provider}")
        cwd = ROOT
        setting, _, agents = profile.partition(":")  # latency:normalize = a worker without the bar agent
        if setting == "baseline":  # the worker of another source tree, in its default profile
            cwd = Path(os.environ["BENCH_BASELINE"])
            env["PYTHONPATH"] = str(cwd)
        else:
            env["MARKETPIPE_PROCESSOR_PROFILE"] = setting
        if agents:
            env["MARKETPIPE_PROCESSOR_AGENTS"] = agents
        log = home / f"worker-{profile}-{provider}.log"
        proc = subprocess.Popen([sys.executable, "-m", "marketpipe", "--log-level", "WARNING", "process"], env=env,
                                stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=cwd)
        try:
            print(f"profile {profile}: {name} for {seconds:.0f} s ... ({load_line()})", flush=True)
            row = run_rate(s, name, provider, per_frame, fps, seconds, proc.pid)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{log.read_text()[-2000:]}") from None
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        row["profile"] = profile
        rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    quick, json_path = options(argv)
    seconds = 2.0 if quick else float(os.environ.get("BENCH_LATENCY_SECONDS", "15"))
    default = "latency,throughput" + (",baseline" if os.environ.get("BENCH_BASELINE") else "")
    profiles = [p for p in os.environ.get("BENCH_PROFILES", default).split(",") if p]
    rows: list[dict[str, Any]] = []
    with broker() as bootstrap, tempfile.TemporaryDirectory(prefix="mp-bench-lat-") as tmp:
        for profile in profiles:
            rows += run_profile(bootstrap, Path(tmp), profile, seconds)
    print()
    print(f"{'profile':<19} {'input':<17} {'ticks seen':>11} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'worker CPU':>10} {'RSS MB':>7} {'load':>5}")
    for r in rows:
        print(f"{r['profile']:<19} {r['rate']:<17} {r['got']:>5}/{r['expected']:<5} {r['p50']:>7.1f} {r['p90']:>7.1f} "
              f"{r['p99']:>7.1f} {r['max']:>7.1f} {r['worker_cpu']:>9.0%} {r['rss_mb']:>7.0f} {r['load']:>5.1f}")
    print("(producer receive-time header -> record read from md.tick; one worker running normalize + bars; "
          "targets p99 < 20 ms at 1,000 frames/s, < 50 ms at 10,000 records/s)")
    print(load_line())
    write_json(json_path, {"quick": quick, "rows": rows, "load": os.getloadavg()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
