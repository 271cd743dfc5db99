"""Normalization throughput per CPU-second, four ways, on one broker and one backlog, in one run.

    .venv/bin/python bench/bench_processors.py          (or: make bench)

(a) plain confluent-kafka passthrough (consume, produce unchanged);
(b) plain confluent-kafka doing our job: decode + normalize + Avro (``marketpipe.processors.normalize.Normalizer``);
(c) our Faust app doing that job (``marketpipe process --agents normalize``) in the throughput
    profile, (c-lat) the same in the latency profile (``MARKETPIPE_PROCESSOR_PROFILE``), and (c+)
    the default worker that also runs the bar agent over md.tick in the same process; (c0) with
    ``BENCH_BASELINE=<source tree>``: the normalize worker of that tree (before/after in one run);
(d) Quix Streams doing the same decode + normalize + Avro.

Each variant runs as its own process (best of ``BENCH_REPEATS``, default 2) over the same backlog
copied under its own topic prefix, flushes its output before committing (at-least-once, like the
app), and is measured from outside: it is started on empty topics and left to settle, then the
backlog is written and its CPU (user+system, all threads, from /proc) counted until the last
expected record is out; wall time runs from its first output record to its last. ``--quick``: 1/20
of the backlog, one run each (checks that it works; tests run it). Normalized records per
CPU-second and the ratios c/b and c/d are printed. End-to-end latency: bench_latency.py.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, broker, cpu_seconds, env_for, fresh_settings, records_in, wait_until  # noqa: E402

from marketpipe.kafka.clients import durable_producer_config
from marketpipe.rawframe import RawMeta

MD_TOPICS = ["md.tick", "md.quote", "md.depth", "md.kline", "md.dlq"]
THROUGHPUT = {"MARKETPIPE_PROCESSOR_PROFILE": "throughput"}
LATENCY = {"MARKETPIPE_PROCESSOR_PROFILE": "latency"}
COPY_TOPIC, QUIX_TOPIC = "bench.copy", "bench.quix"
REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))
rng = random.Random(11)


# ---- the backlog: realistic frames with the producer's headers ---------------------------------
def backlog(scale: int = 1) -> list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]]:
    """The backlog, or 1/scale of it (quick mode)."""
    import bench_decode as bd

    frames = []
    recv = time.time_ns()
    now_ms, minute = recv // 1_000_000, bd.minute_before(recv // 1_000_000)  # plausible times for "received now"
    for _i in range(1000 // scale):  # jvQuant lv1: 20 snapshots per frame
        value = bd.deflate("\n".join(bd.lv1_row(600000 + rng.randint(0, 999), minute) for _ in range(20)))
        frames.append(("jvquant", value, "binary"))
    for _i in range(1500 // scale):  # jvQuant lv2: 10 rows of 3 trades per frame
        frames.append(("jvquant", bd.deflate("\n".join(bd.lv2_row(rng.randint(1, 3000), minute) for _ in range(10))),
                       "binary"))
    for _i in range(30000 // scale):  # Infoway: one trade per JSON frame
        frames.append(("infoway", bd.iw_trade(now_ms).encode(), "text"))
    rng.shuffle(frames)
    out, seq = [], {}
    for provider, value, opcode in frames:
        conn = f"{provider}-{len(out) % 3}"
        seq[conn] = seq.get(conn, 0) + 1
        meta = RawMeta(provider, conn, seq[conn], 1, recv, opcode, "data")
        out.append((provider, conn.encode(), value, meta.headers()))
    return out


def expected_records(frames: list[Any]) -> int:
    from marketpipe.processors.decode import ParseError, RawFrame, decode
    from marketpipe.rawframe import parse_meta

    n = 0
    for i, (provider, _key, value, headers) in enumerate(frames):
        try:
            n += len(decode(RawFrame(provider, value, parse_meta(headers), f"raw.{provider}", 0, i)))
        except ParseError as exc:
            # the backlog must be good frames: dead letters cost more than records and are not the job
            raise RuntimeError(f"backlog frame {i} ({provider}) would be dead-lettered: {exc}") from None
    return n


def bench_topics(s: Any) -> None:
    """The output topics of variants (a) and (d), before they start."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(s.kafka.client_config())
    for f in admin.create_topics([NewTopic(s.topic(t), 6, -1) for t in (COPY_TOPIC, QUIX_TOPIC)]).values():
        f.result(30)
    records_in(s, [COPY_TOPIC, QUIX_TOPIC])  # returns once both are in the metadata


def load(s: Any, frames: list[Any]) -> None:
    from confluent_kafka import Producer

    p = Producer({**s.kafka.client_config(), "linger.ms": 20, "compression.type": "lz4"})
    for provider, key, value, headers in frames:
        while True:
            try:
                p.produce(s.topic(f"raw.{provider}"), key=key, value=value, headers=headers)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(60) == 0


# ---- the variants (each runs in its own process: ``bench_processors.py --variant NAME``) ---------
class Collected:
    """A producer that keeps what it is given: the Quix variant produces the records itself."""

    def __init__(self) -> None:
        self.rows: list[tuple[bytes, bytes]] = []

    def produce(self, topic: str, key: bytes, value: bytes, timestamp: int = 0) -> None:
        self.rows.append((key, value))

    def poll(self, timeout: float = 0) -> int:
        return 0


def run_confluent(passthrough: bool) -> None:
    from confluent_kafka import Consumer

    from marketpipe import settings as settings_mod
    from marketpipe.processors.profile import tune_gc

    s = settings_mod.load()
    tune_gc()  # the same GC settings as the Faust worker: the same job, measured the same way
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([s.topic("raw.jvquant"), s.topic("raw.infoway")])
    if passthrough:
        from confluent_kafka import Producer

        producer = Producer(durable_producer_config(s.kafka.client_config(), {
            "linger.ms": 5, "compression.type": "lz4", "batch.num.messages": 10000}))
        out_topic = s.topic(COPY_TOPIC)
    else:
        from marketpipe.processors.normalize import Normalizer, RawRecord
        from marketpipe.processors.output import Output

        out = Output(s)
        normalizer = Normalizer(out)
        producer = out.producer
    while not stop.is_set():
        msgs = consumer.consume(2000, timeout=0.05)
        if not msgs:
            continue
        for m in msgs:
            if m.error():
                continue
            if passthrough:
                while True:
                    try:
                        producer.produce(out_topic, key=m.key(), value=m.value(), headers=m.headers())
                        break
                    except BufferError:
                        producer.poll(0.05)
            else:
                normalizer.process("jvquant" if m.topic().endswith("jvquant") else "infoway", RawRecord.of(m))
        if producer.flush(60):
            raise SystemExit("outputs not written")
        consumer.commit(asynchronous=True)
    consumer.close()


def run_quix() -> None:
    from quixstreams import Application, message_context
    from quixstreams.models.serializers import Serializer

    from marketpipe import settings as settings_mod
    from marketpipe.processors.normalize import Normalizer, RawRecord
    from marketpipe.processors.output import Output
    from marketpipe.processors.profile import tune_gc

    s = settings_mod.load()
    tune_gc()
    collected = Collected()
    normalizer = Normalizer(Output(s, producer=collected))  # the same decode + Avro; Quix produces

    class Encoded(Serializer):
        def __call__(self, value: Any, ctx: Any) -> bytes:
            return value[1]

    def normalize(value: bytes, key: Any, timestamp: int, headers: Any) -> list[tuple[bytes, bytes]]:
        ctx = message_context()
        provider = "jvquant" if ctx.topic.endswith("jvquant") else "infoway"
        normalizer.process(provider, RawRecord(ctx.topic, ctx.partition, ctx.offset, value, list(headers or [])))
        rows, collected.rows = collected.rows, []
        return rows

    app = Application(broker_address=s.kafka.bootstrap_servers, consumer_group=f"bench-quix-{uuid.uuid4().hex[:6]}",
                      auto_offset_reset="earliest", loglevel="WARNING",
                      producer_extra_config={"linger.ms": 5, "compression.type": "lz4"})
    target = app.topic(s.topic(QUIX_TOPIC), key_serializer="bytes", value_serializer=Encoded())
    for name in ("raw.jvquant", "raw.infoway"):
        sdf = app.dataframe(app.topic(s.topic(name), key_deserializer="bytes", value_deserializer="bytes"))
        sdf = sdf.apply(normalize, metadata=True, expand=True)
        sdf.to_topic(target, key=lambda row: row[0])
    app.run()


# ---- the harness --------------------------------------------------------------------------------
def settled(pid: int, alive: Any, minimum: float = 3.0, timeout: float = 120.0) -> None:
    """Return once the process has started up and is idle (CPU growing < 5% for a second)."""
    time.sleep(minimum)
    deadline = time.monotonic() + timeout
    last = cpu_seconds(pid)
    while time.monotonic() < deadline and alive():
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - last < 0.05:
            return
        last = now


def measure(label: str, cmd: list[str], env: dict[str, str], s: Any, outputs: list[str], expected: int,
            log: Path, feed: Any) -> dict[str, Any]:
    """Start the variant on empty topics, let it settle, then ``feed`` it the backlog and take the CPU it
    spends until every expected record is out (start-up is not counted, so a small backlog measures too)."""
    proc = subprocess.Popen(cmd, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            cwd=env.get("BENCH_CWD", ROOT))  # `python -m` imports from its working directory
    try:
        settled(proc.pid, lambda: proc.poll() is None)
        if proc.poll() is not None:
            raise RuntimeError(f"{label}: exited {proc.returncode} before its backlog:\n{log.read_text()[-2000:]}")
        cpu0 = cpu_seconds(proc.pid)
        feed()
        if not wait_until(lambda: records_in(s, outputs) > 0 or proc.poll() is not None, 120, 0.02):
            raise RuntimeError(f"{label}: no output in 120 s:\n{log.read_text()[-2000:]}")
        t0 = time.monotonic()
        ok = wait_until(lambda: records_in(s, outputs) >= expected or proc.poll() is not None, 600, 0.05)
        if proc.poll() is not None:
            raise RuntimeError(f"{label}: exited {proc.returncode} before its last record:\n{log.read_text()[-3000:]}")
        cpu1, t1, n1 = cpu_seconds(proc.pid), time.monotonic(), records_in(s, outputs)
        if not ok or n1 < expected:
            raise RuntimeError(f"{label}: {n1} of {expected} records:\n{log.read_text()[-2000:]}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {"label": label, "records": n1, "measured": expected, "wall": t1 - t0, "cpu": cpu1 - cpu0,
            "per_cpu": expected / max(cpu1 - cpu0, 1e-9), "per_wall": expected / max(t1 - t0, 1e-9)}


def quix_env(env: dict[str, str]) -> dict[str, str] | None:
    """The environment variant (d) runs in, or None when quixstreams cannot be imported there.

    Quix Streams is only in the ``dev`` extra (it pins an older confluent-kafka than ours), so
    ``BENCH_QUIX_PATH`` may name a directory it was installed into (``pip install --target``);
    that directory is put first on the variant's path only.
    """
    extra = os.environ.get("BENCH_QUIX_PATH", "")
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (extra, env.get("PYTHONPATH", "")) if p)}
    probe = subprocess.run([sys.executable, "-c", "import quixstreams"], env=env, capture_output=True)
    return env if probe.returncode == 0 else None


def main(argv: list[str]) -> int:
    from common import load_line, options, write_json

    quick, json_path = options(argv)
    repeats = 1 if quick else REPEATS
    sys.path.insert(0, str(ROOT / "bench"))
    frames = backlog(20 if quick else 1)
    expected = expected_records(frames)
    print(f"backlog: {len(frames)} raw frames (jvQuant lv1 20 rows/frame, lv2 10x3 trades/frame, "
          f"Infoway 1 trade/frame) -> {expected} normalized records{' (quick mode)' if quick else ''}", flush=True)
    me = [sys.executable, str(Path(__file__).resolve()), "--variant"]
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    with broker() as bootstrap, tempfile.TemporaryDirectory(prefix="mp-bench-proc-") as tmp:
        home = Path(tmp)
        normalize = [sys.executable, "-m", "marketpipe", "--log-level", "WARNING", "process", "--agents", "normalize"]
        plan = [
            ("a", "confluent passthrough", me + ["passthrough"], [COPY_TOPIC], len(frames), {}),
            ("b", "confluent decode+Avro", me + ["confluent"], MD_TOPICS, expected, {}),
            ("c", "faust app, normalize, throughput", normalize, MD_TOPICS, expected, THROUGHPUT),
            ("c-lat", "faust app, normalize, latency", normalize, MD_TOPICS, expected, LATENCY),
            ("c+", "faust app, all agents, throughput", [sys.executable, "-m", "marketpipe", "--log-level",
                                                         "WARNING", "process"], MD_TOPICS, expected, THROUGHPUT),
            ("d", "quix streams decode+Avro", me + ["quix"], [QUIX_TOPIC], expected, {}),
        ]
        baseline = os.environ.get("BENCH_BASELINE", "")
        if baseline:  # the app as it was (a source tree, e.g. `git archive <commit> | tar -x -C DIR`)
            plan.insert(2, ("c0", "faust app, normalize, BASELINE", normalize, MD_TOPICS, expected,
                            {"PYTHONPATH": baseline, "BENCH_CWD": baseline}))
        for key, label, cmd, outputs, want, extra_env in plan:
            runs = []
            for attempt in range(repeats):  # best of N: the machine may be busy with something else
                s = fresh_settings(bootstrap, key.replace("+", "p"))
                env = {**env_for(bootstrap, s.topic_prefix, home / f"{key}{attempt}"), **extra_env}
                if key == "d":
                    env = quix_env(env)
                    if env is None:
                        print("skipping (d): quixstreams is not installed (pip install '.[dev]', or set "
                              "BENCH_QUIX_PATH to a directory it was installed into)", flush=True)
                        break
                bench_topics(s)
                print(f"running ({key}) {label}, run {attempt + 1}/{repeats} ... ({load_line()})", flush=True)
                try:
                    run = measure(label, cmd, env, s, outputs, want, home / f"{key}{attempt}.log",
                                  lambda s=s: load(s, frames))
                except RuntimeError as exc:  # reported at the end; the other variants still run
                    failures.append(str(exc))
                    print(f"FAILED ({key}): {str(exc).splitlines()[0]}", flush=True)
                    continue
                print(f"  ({key}) {run['per_cpu']:,.0f} records/CPU-s, {run['cpu']:.2f} CPU s", flush=True)
                runs.append(run)
            if runs:
                r = max(runs, key=lambda run: run["per_cpu"])
            elif key == "d" and env is None:
                r = {"label": label, "skipped": "quixstreams not installed"}
            else:
                r = {"label": label, "failed": True}
            r["key"] = key
            results.append(r)
    if failures:
        print("\n\n".join(failures), file=sys.stderr)
        write_json(json_path, {"quick": quick, "variants": results, "failures": failures})
        return 1
    by = {r["key"]: r for r in results if not r.get("skipped")}
    print()
    print(f"{'variant':<43} {'records':>8} {'wall s':>7} {'CPU s':>7} {'records/CPU-s':>14} {'records/s':>10}")
    for r in results:
        if r.get("skipped"):
            print(f"{'(' + r['key'] + ')':<8}{r['label']:<35} skipped: {r['skipped']}")
            continue
        print(f"{'(' + r['key'] + ')':<8}{r['label']:<35} {r['records']:>8} {r['wall']:>7.2f} {r['cpu']:>7.2f} "
              f"{r['per_cpu']:>14,.0f} {r['per_wall']:>10,.0f}")
    ratios = {"c/b": by["c"]["per_cpu"] / by["b"]["per_cpu"], "b/a": by["b"]["per_cpu"] / by["a"]["per_cpu"]}
    if "d" in by:
        ratios["c/d"] = by["c"]["per_cpu"] / by["d"]["per_cpu"]
    print()
    print(f"c/b = {ratios['c/b']:.2f}  (target >= 0.8: {'met' if ratios['c/b'] >= 0.8 else 'NOT met'})")
    if "c/d" in ratios:
        print(f"c/d = {ratios['c/d']:.2f}  (target >= 1.0: {'met' if ratios['c/d'] >= 1.0 else 'NOT met'})")
    else:
        print("c/d = n/a (variant d skipped)")
    print(f"b/a = {ratios['b/a']:.2f}  (records per CPU-s of our job vs frames per CPU-s of a bare copy)")
    print("(c) is the same job as (b) and (d): `marketpipe process --agents normalize`; (c+) is the default "
          "deployment,\n    which also re-reads md.tick for bars in the same process. (a) counts frames, the others "
          "normalized records.\n    (b), (c) and (d) use the same GC settings (marketpipe/processors/profile.py tune_gc).")
    if "c0" in by:
        print(f"c/c0 = {by['c']['per_cpu'] / by['c0']['per_cpu']:.2f}  (this tree vs BENCH_BASELINE)")
    print(load_line())
    write_json(json_path, {"quick": quick, "frames": len(frames), "expected_records": expected, "variants": results,
                           "ratios": ratios, "load": os.getloadavg()})
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--variant":
        sys.path.insert(0, str(ROOT / "bench"))
        variant = sys.argv[2]
        if variant == "quix":
            run_quix()
        else:
            run_confluent(passthrough=variant == "passthrough")
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
