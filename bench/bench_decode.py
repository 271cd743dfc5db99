"""Decode cost per normalized record (no Kafka): ``.venv/bin/python bench/bench_decode.py [--quick] [--json F]``.

Frames mirror performance.md §1.4: jvQuant lv1 = 20 rows per raw-DEFLATE frame, lv2 = 10
rows of 3 trades, Infoway = one trade per JSON frame. Prints CPU µs/record (process time, so a
busy machine inflates it less than wall time would) for decode alone, decode + Avro as the codec
encodes (marketpipe/schemas/avro_writer.py), and decode + fastavro.schemaless_writer (the previous encoder),
side by side in one run.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from marketpipe.processors.decode import RawFrame, decode, decoders
from marketpipe.processors.decode.common import forget_clock_times
from marketpipe.rawframe import RawMeta
from marketpipe.schemas.codec import Codec

RECV_NS = 1786775227483000000
rng = random.Random(7)


def deflate(text: str) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(text.encode()) + c.flush()


def minute_before(now_ms: int) -> str:
    """``HH:MM`` (Shanghai) of the minute before ``now_ms``: rows stamped in it are plausibly fresh for a
    frame received at ``now_ms`` (the decoders refuse clock times an hour ahead of the receive time)."""
    from marketpipe.simulators.market import shanghai_hms

    return shanghai_hms(now_ms - 60_000)[:5]


#: the clock minute of the decode benchmark's rows: just before its fixed receive time
CLOCK = minute_before(RECV_NS // 1_000_000)


def lv1_row(code: int, minute: str = CLOCK) -> str:
    p = round(rng.uniform(5, 200), 2)
    book = ",".join(f"{rng.randint(1, 90) * 100},{p - i * 0.01:.2f}" for i in range(5)) + "," + \
        ",".join(f"{rng.randint(1, 90) * 100},{p + (i + 1) * 0.01:.2f}" for i in range(5))
    vol = rng.randint(10**5, 10**8)
    return f"lv1_{code:06d}={minute}:{rng.randint(0, 59):02d},测试股份,{p},1.25,{vol * p:.2f},{vol},{book}"


def lv2_row(code: int, minute: str = CLOCK) -> str:
    return f"lv2_{code:06d}=" + "|".join(
        f"{minute}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d},{rng.randint(10**6, 10**7)},{rng.uniform(5, 200):.2f},"
        f"{rng.randint(1, 50) * 100}" for _ in range(3))


def iw_trade(now_ms: int = RECV_NS // 1_000_000, spread_ms: int = 10**6) -> str:
    """An Infoway trade push dated within the ``spread_ms`` before ``now_ms`` (the decoders refuse
    trades a day older than their receive time, so frames sent to a live worker pass the current
    time; a live worker's bars count trades older than their correction horizon as late, so those
    pass a spread of seconds)."""
    return ('{"code":10002,"data":{"p":"%.2f","s":"BTCUSDT","t":%d,"td":1,"v":"%.5f","vw":"%.5f"}}'
            % (rng.uniform(60000, 64000), now_ms - rng.randint(0, spread_ms), rng.random(), rng.random() * 60000))


def frames(provider: str, values: list[bytes], opcode: str) -> list[RawFrame]:
    meta = RawMeta(provider, "bench", 1, 1, RECV_NS, opcode, "data")
    return [RawFrame(provider, v, meta, f"raw.{provider}", 0, i) for i, v in enumerate(values)]


def fastavro_encoders(codec: Codec) -> dict:
    """The encoders as they were before marketpipe/schemas/avro_writer.py: fastavro.schemaless_writer per record."""
    import io

    import fastavro

    from marketpipe.schemas.codec import schema

    def make(name: str):
        parsed, header = schema(name).parsed, b"\xc3\x01" + schema(name).fingerprint

        def enc(record: dict) -> bytes:
            buf = io.BytesIO()
            buf.write(header)
            fastavro.schemaless_writer(buf, parsed, record)
            return buf.getvalue()
        return enc
    return {s: make(s) for s in ("Tick", "Quote", "Depth", "Kline")}


def bench(label: str, batch: list[RawFrame], codec: Codec, runs: int = 5) -> dict:
    """CPU time (process_time, so other processes on a busy machine do not count) per record, the
    median of ``runs`` runs (the best run flattered the figure: the target is for the median)."""
    encoders = {s: codec.encoder(s) for s in ("Tick", "Quote", "Depth", "Kline")}
    old = fastavro_encoders(codec)
    clock = time.process_time
    decoders()  # the decoders are imported on first use; the timings are of decoding, not of importing
    times: dict[str, list[float]] = {"dec": [], "all": [], "old": []}
    records = 0
    for _ in range(runs):
        forget_clock_times()  # every run starts as a fresh worker does: times parsed once per process
        t0 = clock()
        records = 0
        for f in batch:  # records are dropped per frame as in the processor (a list of all would time the GC)
            records += len(decode(f))
        t1 = clock()
        for f in batch:
            for n in decode(f):
                encoders[n.schema](n.record)
        t2 = clock()
        for f in batch:
            for n in decode(f):
                old[n.schema](n.record)
        t3 = clock()
        times["dec"].append((t1 - t0) / records * 1e6)
        times["all"].append((t2 - t1) / records * 1e6)
        times["old"].append((t3 - t2) / records * 1e6)
    mid = {k: statistics.median(v) for k, v in times.items()}

    def spread(k: str) -> str:
        return f"{mid[k]:.2f} ({min(times[k]):.2f}-{max(times[k]):.2f})"
    print(f"{label:<16} {records:>7} {spread('dec'):>20} {spread('all'):>22} {spread('old'):>22}", flush=True)
    return {"label": label, "records": records, "decode_us": mid["dec"], "decode_avro_us": mid["all"],
            "decode_fastavro_us": mid["old"], "runs": runs, "decode_us_runs": times["dec"],
            "decode_avro_us_runs": times["all"]}


def main(argv: list[str]) -> int:
    from common import load_line, machine_speed, options, write_json

    quick, json_path = options(argv)
    scale, runs = (20, 1) if quick else (1, 5)
    codec = Codec()
    lv1 = frames("jvquant", [deflate("\n".join(lv1_row(600000 + rng.randint(0, 999)) for _ in range(20)))
                             for _ in range(500 // scale)], "binary")
    lv2 = frames("jvquant", [deflate("\n".join(lv2_row(rng.randint(1, 3000)) for _ in range(10)))
                             for _ in range(1000 // scale)], "binary")
    iw = frames("infoway", [iw_trade().encode() for _ in range(20000 // scale)], "text")
    speed = machine_speed()
    print(f"python {sys.version.split()[0]}; CPU µs per record, median (min-max) of {runs} runs; {load_line()}; "
          f"yardstick sum(range(1000)) {speed:.2f} µs")
    print(f"{'':<16} {'records':>7} {'decode':>20} {'decode+avro':>22} {'decode+fastavro':>22}")
    rows = [bench("jvquant lv1", lv1, codec, runs), bench("jvquant lv2", lv2, codec, runs),
            bench("infoway trade", iw, codec, runs)]
    print("(jvquant lv1: 20 rows/frame; lv2: 10 rows x 3 trades/frame; infoway: 1 trade/frame. Targets: lv1 decode "
          "<= 8 µs/record, decode+avro <= 12 µs, medians)")
    write_json(json_path, {"quick": quick, "load": os.getloadavg(), "yardstick_us": speed, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
