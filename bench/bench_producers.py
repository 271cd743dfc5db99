"""Producer throughput: frames/s from a simulator through ``marketpipe produce`` into Kafka, next to
the websocket receive rate alone, in one run.

    .venv/bin/python bench/bench_producers.py          (or: make bench)

Per provider (jvQuant lv1+lv2 binary frames, Infoway JSON trades) and per offered rate, two
processes take turns against the same simulator: a bare websocket-client receiver that does the
provider handshake with the producer's own feed class and only counts frames, and the real
producer writing every frame to Kafka (idempotent, acks=all, lz4). Each is measured over the same
window: frames/s (bare: its own count; producer: end offsets of the raw topic), CPU per frame
(/proc, all threads), and the frames the simulator wrote to that connection.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, broker, cpu_seconds, env_for, fresh_settings, records_in, wait_until

WINDOW = 8.0  # seconds measured per run, after a warm-up
JV_CODES = "600519,601318,000001,002594,300750,688981,430047,113050,127063,512170,159506,600290"
IW_CODES = "BTCUSDT,ETHUSDT"


def bare(provider: str, url: str) -> None:
    """Receive and count frames only; prints the count on SIGTERM."""
    import websocket

    if provider == "jvquant":
        from marketpipe.providers.jvquant.feed import JvQuantFeed

        feed: Any = JvQuantFeed(url, "bench", JV_CODES.split(","), ["lv1", "lv2"])
    else:
        from marketpipe.providers.infoway.feed import InfowayFeed

        feed = InfowayFeed(url, "bench", "crypto", IW_CODES.split(","))
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    noop = lambda *_: None  # noqa: E731
    address, headers = feed.prepare(noop)
    ws = websocket.create_connection(address, header=headers, timeout=2)
    feed.on_open(ws, noop)
    frames = 0
    last_beat = last_write = time.monotonic()
    count_file = Path(os.environ["BENCH_COUNT_FILE"])
    while not stop["now"]:
        try:
            ws.recv_data()
            frames += 1
        except websocket.WebSocketTimeoutException:
            pass
        now = time.monotonic()
        if now - last_beat > 15:
            feed.heartbeat(ws)
            last_beat = now
        if now - last_write > 0.1:
            count_file.write_text(str(frames))
            last_write = now
    count_file.write_text(str(frames))


def run_one(kind: str, provider: str, sim: Any, s: Any, env: dict[str, str], log: Path,
            window: float = WINDOW) -> dict[str, Any]:
    count_file = log.with_suffix(".count")
    count_file.write_text("0")
    if kind == "bare":
        url = sim.base_url if provider == "jvquant" else sim.url
        cmd = [sys.executable, str(Path(__file__).resolve()), "--bare", provider, url]
        counted = lambda: int(count_file.read_text() or 0)  # noqa: E731
    else:
        codes = JV_CODES if provider == "jvquant" else IW_CODES
        extra = ["--levels", "lv1,lv2"] if provider == "jvquant" else []
        cmd = [sys.executable, "-m", "marketpipe", "produce", provider, "--codes", codes, *extra]
        counted = lambda: records_in(s, [f"raw.{provider}"])  # noqa: E731
    env = {**env, "BENCH_COUNT_FILE": str(count_file)}
    before = dict(sim.stats()["per_connection"])

    def sim_sent(key: str) -> int:
        return sum(v.get(key, 0) for k, v in sim.stats()["per_connection"].items() if k not in before)
    proc = subprocess.Popen(cmd, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        if not wait_until(lambda: counted() > 0 or proc.poll() is not None, 60, 0.1) or proc.poll() is not None:
            raise RuntimeError(f"{kind} {provider} did not start:\n{log.read_text()[-2000:]}")
        time.sleep(min(2.0, window))  # warm-up
        n0, c0, t0, r0 = counted(), cpu_seconds(proc.pid), time.monotonic(), sim_sent("trades")
        time.sleep(window)
        n1, c1, t1, r1 = counted(), cpu_seconds(proc.pid), time.monotonic(), sim_sent("trades")
    finally:
        # nothing in flight while the receiver closes: pause the feed and let the receiver catch up
        # with what the simulator already wrote (a slow receiver leaves a backlog in the socket)
        sim.sim.fault("stall", 600)
        last, still = -1, 0
        deadline = time.monotonic() + 60
        while still < 10 and time.monotonic() < deadline:
            time.sleep(0.1)
            now = counted()
            still = still + 1 if now == last else 0
            last = now
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        sim.sim.fault("clear")
    sent = sim_sent("frames")
    got = int(count_file.read_text()) if kind == "bare" else counted()
    frames = n1 - n0
    return {"kind": kind, "provider": provider, "fps": frames / (t1 - t0), "rows": (r1 - r0) / (t1 - t0),
            "cpu_us": (c1 - c0) / max(frames, 1) * 1e6, "sent": sent, "total": got}


def main(argv: list[str]) -> int:
    from common import load_line, options, write_json

    from marketpipe.simulators.runner import run as run_sim

    quick, json_path = options(argv)
    window = 1.0 if quick else WINDOW
    plan = (("jvquant", (2000,)), ("infoway", (500,))) if quick else \
        (("jvquant", (5000, 40000)), ("infoway", (2000, 20000)))
    rows = []
    with broker() as bootstrap, tempfile.TemporaryDirectory(prefix="mp-bench-prod-") as tmp:
        home = Path(tmp)
        for provider, rates in plan:
            for rate in rates:
                options: dict[str, Any] = {"rate": rate}
                if provider == "jvquant":
                    options["symbols"] = JV_CODES.split(",")
                else:
                    options.update(symbols=IW_CODES.split(","), api_key="bench")
                with run_sim(provider, **options) as sim:
                    for kind in ("bare", "producer"):
                        s = fresh_settings(bootstrap, kind[0])
                        env = env_for(bootstrap, s.topic_prefix, home / kind)
                        env.update({"JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": "bench",
                                    "INFOWAY_WS_URL": sim.url, "INFOWAY_API_KEY": "bench"})
                        print(f"{provider} at {rate}/s: {kind} ... ({load_line()})", flush=True)
                        r = run_one(kind, provider, sim, s, env, home / f"{provider}-{rate}-{kind}.log", window)
                        r["rate"] = rate
                        rows.append(r)
    print()
    print(f"{'provider':<9} {'offered':>8} {'receiver':<9} {'frames/s':>10} {'trades/s':>9} {'CPU µs/frame':>13} "
          f"{'sim sent':>9} {'received':>9}")
    for r in rows:
        print(f"{r['provider']:<9} {r['rate']:>8} {r['kind']:<9} {r['fps']:>10,.0f} {r['rows']:>9,.0f} "
              f"{r['cpu_us']:>13.1f} {r['sent']:>9} {r['total']:>9}")
    print()
    for provider in ("jvquant", "infoway"):
        for rate in sorted({r["rate"] for r in rows if r["provider"] == provider}):
            b = next(r for r in rows if r["provider"] == provider and r["rate"] == rate and r["kind"] == "bare")
            p = next(r for r in rows if r["provider"] == provider and r["rate"] == rate and r["kind"] == "producer")
            lost = p["sent"] - p["total"]
            print(f"{provider} offered {rate}/s: producer/bare frames/s = {p['fps'] / b['fps']:.2f}; "
                  f"producer CPU per frame = {p['cpu_us'] / max(b['cpu_us'], 1e-9):.1f}x bare; "
                  f"frames the simulator sent that are not in Kafka: {lost}")
    print("(offered = trades/s the simulator generates: jvQuant packs many rows into each binary frame at a fixed "
          "push rate,\n Infoway sends one trade per JSON frame; 'received' counts frames the receiver got, for the "
          "producer: landed in Kafka)")
    print(load_line())
    write_json(json_path, {"quick": quick, "rows": rows, "load": os.getloadavg()})
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--bare":
        bare(sys.argv[2], sys.argv[3])
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
