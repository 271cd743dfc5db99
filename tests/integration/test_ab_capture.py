"""Issue 21 item 3, A/B capture, on real processes and a real broker: two producers (``--line A``
and ``--line B``) on one jvQuant simulator, one processor worker.

Line A is killed (``kill -9``) mid-stream: every level-2 trade the simulator sent reaches
``md.tick`` (line B carried it), none twice, and ``md.status`` says line A is down without
reporting a data gap. Then line B is killed too and started again: nobody delivered in between,
so the gap is reported on ``md.status``."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from marketpipe.rawframe import H_LINE
from marketpipe.simulators.runner import run as run_sim
from tests.support.pipeline import read_topic, start_producer, start_worker, stop_worker, wait_for

CODES = ["600519", "000001"]


def sent_ids(record: Path) -> set[tuple[str, str]]:
    """(code, trade number) of every level-2 trade the simulator wrote to any connection."""
    ids: set[tuple[str, str]] = set()
    for line in record.read_text().splitlines():
        for row in json.loads(line).get("rows", []):
            ids.update((row["code"], str(t)) for t in row.get("trade_ids", ()))
    return ids


def where_sent(record: Path, missing: set[tuple[str, str]], since_ns: int) -> list[str]:
    """For a failure message: which connection and frame carried each missing trade, and when,
    in seconds after ``since_ns``."""
    out = []
    for line in record.read_text().splitlines():
        frame = json.loads(line)
        for row in frame.get("rows", []):
            hit = sorted(t for t in row.get("trade_ids", ()) if (row["code"], str(t)) in missing)
            if hit:
                out.append(f"{frame['conn']}#{frame['seq']} at {(frame['ts_ns'] - since_ns) / 1e9:+.2f} s: "
                           f"{row['code']} {hit[:3]}{'...' if len(hit) > 3 else ''}")
    return out


def lines_delivered(s: Any) -> set[str]:
    """The lines with a frame on raw.jvquant. Both lines write one key, so one partition, in order:
    a line with a frame there has delivered every frame it received before that one."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    topic = s.topic("raw.jvquant")
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        lines: set[str] = set()
        for msg in consumer.consume(10_000, timeout=2):
            if not msg.error():
                lines.update(v.decode() for k, v in msg.headers() or () if k == H_LINE)
        return lines
    finally:
        consumer.close()


def tick_ids(ticks: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """How many times each trade was published: copies from different raw frames (``source``); the
    same frame's record written again (at-least-once, after a worker's rebalance) is byte-identical
    and is one publication (README: processing guarantees and duplicates)."""
    copies = {((t["symbol"].split(".")[0], t["trade_id"]), tuple(sorted(t["source"].items()))) for t in ticks}
    return Counter(trade for trade, _ in copies)


def test_line_a_killed_loses_no_trade_and_both_killed_reports_the_gap(mp_env, mp_settings, tmp_path) -> None:
    s = mp_settings
    record = tmp_path / "sent.jsonl"
    worker = start_worker({**mp_env, "MARKETPIPE_PROCESSOR_AGENTS": "normalize"}, tmp_path / "worker.log")
    lines: dict[str, Any] = {}
    try:
        with run_sim("jvquant", rate=100, symbols=CODES, record=record) as sim:
            env = {**mp_env, "JVQUANT_BASE_URL": sim.base_url, "JVQUANT_TOKEN": "tok"}

            def start(line: str) -> Any:
                return start_producer(env, "jvquant", tmp_path / f"producer-{line}.log", "--codes", ",".join(CODES),
                                      "--levels", "lv1,lv2", "--market-hours", "always", "--line", line)

            lines = {"A": start("A"), "B": start("B")}
            # The first ticks went to the line that subscribed first, alone: killed before its Kafka
            # producer got through, it takes them along, and no A/B pair can have them. So both lines
            # have delivered (their first frames are on the raw topic) before A is killed.
            wait_for(lambda: lines_delivered(s) == {"A", "B"}, timeout=120, what="frames of both lines on raw.jvquant")
            wait_for(lambda: len(read_topic(s, "md.tick", idle=0.5, until=300, timeout=5)) >= 300, timeout=120,
                     what="ticks on md.tick")
            killed_ns = time.time_ns()
            stop_worker(lines["A"], signal.SIGKILL)  # mid-stream: whatever A held is lost
            time.sleep(8)  # line B delivers on: A is more than 5 s behind it (line_down)
            sim.sim.fault("stall", 10)  # the simulator pauses, so "everything it sent" stays put
            time.sleep(1.5)  # its JSONL trails the sockets by up to one tick
            sent = sent_ids(record)
            got: Counter[tuple[str, str]] = Counter()
            ticks: list[dict[str, Any]] = []

            def all_landed() -> bool:
                ticks[:] = read_topic(s, "md.tick", idle=1.0, timeout=20)
                got.clear()
                got.update(tick_ids(ticks))
                return sent <= set(got)

            def missing() -> str:
                lost = sent - set(got)
                tails = "\n".join(f"--- {p.name} ---\n{p.read_text(errors='replace')[-1500:]}"
                                   for p in sorted(tmp_path.glob("*.log")))
                return (f"{len(lost)} sent trades missing on md.tick; sent (seconds after A's kill):\n  "
                        + "\n  ".join(where_sent(record, lost, killed_ns)[:20]) + "\n" + tails)

            wait_for(all_landed, timeout=60, what=missing)
            assert sent == set(got) and len(sent) > 300
            print(f"A/B: {len(sent)} trades sent, {len(ticks)} tick records, {sum(got.values())} publications "
                  f"(a record written again from the same frame is one), {len(set(got))} distinct trades")
            twice = [k for k, n in got.items() if n > 1]
            assert twice == [], f"published twice from different frames: {twice[:5]}"
            status = read_topic(s, "md.status", idle=1.0, timeout=20)
            assert [r for r in status if r["kind"] == "gap"] == []
            downs = [r for r in status if r["kind"] == "line_down"]
            assert [r["line"] for r in downs] == ["A"] and downs[0]["connection"] == "jvquant-ab"

            # both lines down: B killed and started again, A still dead
            stop_worker(lines["B"], signal.SIGKILL)
            time.sleep(2)
            lines["B"] = start("B")

            def gap_reported() -> list[dict[str, Any]]:
                return [r for r in read_topic(s, "md.status", idle=1.0, timeout=20)
                        if r["kind"] == "gap" and r["line"] == "B"]

            wait_for(lambda: bool(gap_reported()), timeout=90, what="the gap both lines missed on md.status")
            [gap] = gap_reported()
            assert "both lines missed" in gap["reason"] and gap["gap_end"] - gap["gap_start"] >= 2000
    finally:
        for proc in lines.values():
            stop_worker(proc)
        stop_worker(worker)
