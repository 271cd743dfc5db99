"""The completeness ledger end to end on a real broker: two jvQuant simulators, a producer each, one
processor worker. One simulator drops its connection (and refuses new ones for 3 s): the ledger
shows that symbol's hole, exactly the gap the processor found, as unfillable (jvQuant has no
history), and ``completeness()`` and ``marketpipe status --gaps`` say so; the other feed ran
clean and is complete over the same range."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from marketpipe import client
from marketpipe.completeness import UNOBSERVED, Hole
from marketpipe.simulators.runner import run as run_sim
from tests.support.pipeline import read_topic, start_producer, start_worker, stop_worker, wait_for

DROPPED, CLEAN = "600519.SH", "000001.SZ"


def now_ms() -> int:
    return int(time.time() * 1000)


def coverage_start(s: Any, symbols: list[str], timeout: float = 120) -> int:
    """A moment every symbol's ledger covers from on: a second after the latest of their first
    intervals (a loaded machine may start a producer many seconds late: no wall-clock guess)."""
    firsts: dict[str, int] = {}

    def seen() -> bool:
        for day in client.ledger(symbols, settings=s):
            if day.intervals:
                firsts[day.symbol] = min(firsts.get(day.symbol, day.intervals[0].start), day.intervals[0].start)
        return set(firsts) == set(symbols)

    wait_for(seen, timeout=timeout, what=lambda: f"ledger days of {symbols} (have {sorted(firsts)})")
    return max(firsts.values()) + 1000


def test_a_dropped_feed_leaves_an_unfillable_hole_and_a_clean_one_is_complete(mp_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    env = {**mp_env, "MARKETPIPE_COMPLETENESS_INTERVAL": "1s"}
    worker = start_worker(env, tmp_path / "worker.log")
    procs: list[Any] = []

    def answer(symbol: str, start: int, end: int) -> client.Completeness:
        return client.completeness(symbol, start, end, settings=s)

    def written(symbol: str, start: int, end: int) -> bool:
        """The ledger has been written over the whole range (no unobserved part left)."""
        return all(h.state != UNOBSERVED for h in answer(symbol, start, end).holes)

    try:
        with run_sim("jvquant", rate=200, symbols=["600519"]) as sim_a, \
                run_sim("jvquant", rate=200, symbols=["000001"]) as sim_b:
            for sim, code, conn in ((sim_a, "600519", "jv-drop"), (sim_b, "000001", "jv-clean")):
                penv = {**env, "JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": "tok"}
                procs.append(start_producer(penv, "jvquant", tmp_path / f"{conn}.log", "--codes", code,
                                            "--market-hours", "always", "--connection-id", conn,
                                            "--backoff-base", "0.3"))
            t0 = coverage_start(s, [DROPPED, CLEAN])
            wait_for(lambda: written(DROPPED, t0, t0 + 1000) and written(CLEAN, t0, t0 + 1000), timeout=120,
                     what="both symbols in the ledger")
            sim_a.sim.fault("drop", 3)  # the connection is killed and new ones refused for 3 s
            wait_for(lambda: any(r["kind"] == "gap" for r in read_topic(s, "md.status", idle=1)), timeout=60,
                     what="the processor's gap")
            [gap] = [r for r in read_topic(s, "md.status", idle=1) if r["kind"] == "gap"]
            assert gap["connection"] == "jv-drop" and gap["gap_end"] - gap["gap_start"] >= 3000
            t1 = gap["gap_end"] + 3000
            wait_for(lambda: now_ms() > t1 and written(DROPPED, t0, t1) and written(CLEAN, t0, t1), timeout=60,
                     what="the ledger written past the gap")

            dropped = answer(DROPPED, t0, t1)
            assert not dropped.complete
            statuses = [(r["kind"], r.get("connection"), r.get("gap_start"), r.get("gap_end"), r.get("reason"))
                        for r in read_topic(s, "md.status", idle=1) if r["kind"] != "stats"]
            assert dropped.holes == (Hole(gap["gap_start"], gap["gap_end"], "unfillable"),), \
                f"ledger holes {dropped.holes}; md.status: {statuses}"
            assert answer(DROPPED, t0, gap["gap_start"]).complete  # before the drop it was complete
            assert answer(DROPPED, gap["gap_end"], t1).complete  # and after it again
            assert answer(CLEAN, t0, t1).complete and answer(CLEAN, t0, t1).holes == ()

            minutes = (now_ms() - t0 - 500) / 60_000  # the command's range starts just after t0
            cli = subprocess.run([sys.executable, "-m", "marketpipe", "status", "--gaps", "--json", "--minutes",
                                  f"{minutes:.4f}", "--symbols", DROPPED, CLEAN], env=env, capture_output=True,
                                 text=True, timeout=120)
            rows = {r["symbol"]: r for r in map(json.loads, cli.stdout.splitlines())}
            assert cli.returncode == 1, cli.stderr
            assert rows[DROPPED]["complete"] is False
            assert rows[DROPPED]["holes"] == [{"start": gap["gap_start"], "end": gap["gap_end"], "state": "unfillable"}]
            assert rows[CLEAN]["complete"] is True and rows[CLEAN]["holes"] == []
    finally:
        for p in procs:
            stop_worker(p)
        stop_worker(worker)


def test_the_readme_example_checks_completeness_before_using_todays_bars(mp_pipeline) -> None:
    """examples/downstream/complete_bars.py (shown in the README) run as pasted, on a live pipeline."""
    from tests.support.paths import ROOT

    mp_pipeline.start(jvquant=["600519"])
    s = mp_pipeline.settings

    def a_bar_to_use() -> bool:
        """A bar older than the example's 15 s margin whose window the ledger already covers."""
        old = [b for b in read_topic(s, "md.bar", idle=0.5, timeout=3) if b["window_end"] < now_ms() - 16_000]
        return any(client.completeness(DROPPED, b["window_start"], b["window_end"], settings=s).complete
                   for b in old[-3:])

    wait_for(a_bar_to_use, timeout=120, what="a covered bar older than the example's margin")
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "downstream" / "complete_bars.py"), DROPPED],
                            env={**mp_pipeline.env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    print(result.stdout)
    # today began before the pipeline did: the ledger says so instead of calling the day complete
    assert lines[0].startswith(f"{DROPPED} today until ") and lines[0].endswith("INCOMPLETE")
    assert lines[1].split()[0] == "unobserved"
    usable, of, total, *_ = lines[-1].split()
    assert of == "of" and 0 < int(usable) <= int(total)


def test_an_infoway_gap_the_producer_backfilled_is_filled_in_the_ledger(mp_env, mp_settings, tmp_path) -> None:
    """Infoway has a history endpoint: its gap is a gap until the producer reports it filled (from
    md.status, which the processor's ledger follows), then ``completeness()`` counts it complete and
    names it filled."""
    s = mp_settings
    env = {**mp_env, "MARKETPIPE_COMPLETENESS_INTERVAL": "1s"}
    worker = start_worker(env, tmp_path / "worker.log")
    producer = None
    try:
        with run_sim("infoway", rate=200, symbols=["BTCUSDT"], api_key="key") as sim:
            producer = start_producer({**env, "INFOWAY_WS_URL": sim.url, "INFOWAY_API_KEY": "key",
                                       "INFOWAY_SUBSCRIBE_INTERVAL": "0.1"}, "infoway", tmp_path / "p.log",
                                      "--codes", "BTCUSDT", "--connection-id", "iw-1", "--backoff-base", "0.3")
            t0 = coverage_start(s, ["BTCUSDT"])
            wait_for(lambda: all(h.state != UNOBSERVED for h in client.completeness("BTCUSDT", t0, t0 + 1000,
                                                                                     settings=s).holes),
                     timeout=120, what="BTCUSDT in the ledger")
            # the producer's connection killed (the drop fault's refusal, HTTP 503, is Infoway's
            # "kline count over the limit", which stops a producer for good)
            [conn] = sim.sim.connections.values()
            sim.call(conn.drop())
            wait_for(lambda: {"gap", "filled"} <= {r["kind"] for r in read_topic(s, "md.status", idle=1)},
                     timeout=60, what="the processor's gap and the producer's fill")
            recs = read_topic(s, "md.status", idle=1)
            [gap] = [r for r in recs if r["kind"] == "gap"]
            [filled] = [r for r in recs if r["kind"] == "filled"]
            assert (filled["gap_start"], filled["gap_end"]) == (gap["gap_start"], gap["gap_end"])
            t1 = gap["gap_end"] + 2000

            def answer() -> client.Completeness:
                return client.completeness("BTCUSDT", t0, t1, settings=s)

            wait_for(lambda: now_ms() > t1 and answer().complete and answer().filled, timeout=60,
                     what=lambda: f"the fill in the ledger: {answer()}")
            got = answer()
            assert [(i.start, i.end) for i in got.filled] == [(gap["gap_start"], gap["gap_end"])]
            assert got.filled[0].mark.value == "filled"
            [day] = client.ledger(["BTCUSDT"], settings=s)
            assert [i.mark.value for i in day.intervals if i.end > t0 and i.start < t1] == ["complete", "filled",
                                                                                           "complete"]
    finally:
        if producer is not None:
            stop_worker(producer)
        stop_worker(worker)
