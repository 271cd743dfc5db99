"""Issue 23 item 3: broker faults on a three-node cluster while the whole path runs, each followed
by an audit against what the simulators themselves sent.

Running all the time, sharing one cluster: the jvQuant simulator (market data + trade API) → the
jvQuant producer → raw.jvquant → TWO processor workers → md.*; signed order commands → the trader
→ the simulator's /buy → order.events. Faults, in order:

a. SIGKILL of the leader of the raw.jvquant partition holding the producer's frames (key =
   connection id), restarted ~20 s later; ``FAULT_SUITE_KILLS`` times (2 in CI, 5 in `make chaos`);
b. the same for the leaders of the busiest md.tick partition, of the order.commands partition
   (key = account) and of the busiest order.ledger partition, in turn, while orders flow: each of
   the three once, or ``FAULT_SUITE_KILLS`` kills in all when that is more;
c. SIGSTOP of that partition's leader for 30 s, then SIGCONT;
d. a rolling restart: each broker in turn stopped with SIGTERM (a controlled shutdown) and
   started again, the next one only once no partition is under-replicated;
e. SIGKILL of the leader of the order.ledger partition of a command whose INTENT is written and
   whose /buy call is in progress (the counter answers slowly): the trader must write SUBMITTED to
   the new leader. The trader has no hook that pauses between the INTENT write and the /buy call
   (``MARKETPIPE_TRADER_CRASH_POINT`` only kills the trader itself after the broker accepted), so
   the counter's ``slow`` fault holds /buy open while the kill lands;
f. SIGKILL of the raw partition's leader and, the moment the cluster names its new leader (the
   election), SIGKILL of the processor worker doing the most work (the one decoding the producer's
   frames); the worker is started again 5 s later, as a supervisor would, the broker after ~20 s;
   ``FAULT_SUITE_KILLS`` times.

After each fault the feed is paused (``quiesce``) and audited cumulatively: every frame the
simulator sent is on raw.jvquant by (connection, session, seq), none missing, none written twice;
every trade the simulator sent is on md.tick (deduplicated by ``source``), no source with two
different records; processes alive. At the end every order command has one /buy if the trader
accepted it and none if it rejected it, and ends FILLED / REJECTED / FAILED, or UNKNOWN with its
reason. The time from the fault to the first md.tick record received by the producer after it is
measured and printed, with the machine's load average (for the rolling restart: the longest time
without a new md.tick record). ``FAULT_SUITE_FAULTS=a,c,e`` (the default, CI's short form) picks
faults; `make chaos` runs all six. b, d and f stay out of CI on this 2-core machine: all six took
990 s (load 8-20), and a, c, e with a single f 449 s at load 6-24: not well under the 10 minutes
the short form must stay below.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal
from functools import partial
from typing import Any, Callable, Iterator

import pytest
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, Producer, TopicPartition

from marketpipe import settings as settings_mod
from marketpipe.kafka import topics
from marketpipe.kafka.clients import durable_producer_config
from marketpipe.providers.jvquant.trade_simulator import TradeCounter
from marketpipe.rawframe import header_dict
from marketpipe.schemas.codec import Codec, from_settings
from marketpipe.simulators.runner import run as run_sim
from marketpipe.testing import Cluster, read_topic, start_producer, start_worker, stop_worker, wait_for
from marketpipe.trader import commands

KILLS = int(os.environ.get("FAULT_SUITE_KILLS", "2"))
FAULTS = tuple(f.strip() for f in os.environ.get("FAULT_SUITE_FAULTS", "a,c,e").split(",") if f.strip())
DOWN_S = 20.0  # a killed leader stays down this long
PAUSE_S = 30.0  # a paused leader stays stopped this long
#: a paused leader must cost less than this (from SIGSTOP to the first new md.tick record).
#: Measured after the client timeouts: 11-17 s in 5 of 9 runs, 21 s twice, 30.5-30.8 s twice: the
#: producer had moved on after ~16 s, but the two workers' group rebalanced after the pause (a
#: heartbeat gap past the 10 s session timeout) and the first record waited for that rebalance.
#: Before them: 31.9 s and, twice, more than 120 s (aiokafka held the old leader's metadata). The
#: bound catches the latter and any return of the 60-90 s request timeouts; the aim of < 20 s is
#: printed, not asserted, until the workers' rebalance after a coordinator pause is fixed.
PAUSE_RECOVERY_BOUND_S = 45.0
PAUSE_RECOVERY_AIM_S = 20.0
#: a SIGKILLed leader: leadership moves after the broker session timeout (9 s); measured 9-13 s
KILL_RECOVERY_BOUND_S = 20.0
#: fault b's victims in turn: where the workers write trades, where the trader reads commands and
#: where it writes its intents
B_TARGETS = (topics.MD_TICK, topics.ORDER_COMMANDS, topics.ORDER_LEDGER)
B_KILLS = max(KILLS, len(B_TARGETS))
#: a worker killed -9 leaves its group membership to expire (the 10 s session timeout) before its
#: partitions move; with the election before it and the restarted worker's own rebalance after
#: it, the first record may wait for two rebalances
WORKER_KILL_RECOVERY_BOUND_S = 45.0
WORKER_DOWN_S = 5.0  # a supervisor's restart delay
#: a rolling restart moves leaders by controlled shutdown: the longest md.tick silence it may cause
ROLL_GAP_BOUND_S = KILL_RECOVERY_BOUND_S


def suite_timeout(faults: tuple[str, ...], kills: int) -> float:
    """pytest-timeout's budget for the suite (the default 300 s is CI's per test): the cluster's
    start and the baseline, plus a generous share per fault step (a kill: 20 s down, recovery,
    catching up, the audit)."""
    per_step = {"a": kills, "b": max(kills, len(B_TARGETS)), "c": 1, "d": 3, "e": 1, "f": kills}
    return 300.0 + 150.0 * sum(per_step.get(f, 0) for f in faults)

JV_CODES = ["600519", "000001", "300750"]
KEY = "fault-suite-signing-key"
ACCOUNT = "000000000077"
REFERENCE = {"600519.SH": {"prev_close": "1500.00", "name": "贵州茅台"},
             "000001.SZ": {"prev_close": "11.00", "name": "平安银行"},
             "300750.SZ": {"prev_close": "200.00", "name": "宁德时代"}}
TERMINAL = {"FILLED", "REJECTED", "FAILED", "CANCELLED"}


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------------------------------------
# Reading topics


def raw_frames(s: Any, timeout: float = 60.0) -> tuple[Counter[tuple[str, str, str]], dict[int, int]]:
    """Every raw.jvquant record up to the high watermarks: (connection, session, seq) counts, and
    records per partition."""
    topic = s.topic("raw.jvquant")
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        highs = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        keys: Counter[tuple[str, str, str]] = Counter()
        done = {p: 0 for p in parts}
        deadline = time.monotonic() + timeout
        while any(done[p] < highs[p] for p in parts) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.5):
                if msg.error():
                    continue
                h = header_dict(msg.headers())
                keys[(h.get("connection", ""), h.get("session", ""), h.get("seq", ""))] += 1
                done[msg.partition()] = msg.offset() + 1
        return keys, highs
    finally:
        consumer.close()


def partition_of_key(s: Any, logical: str, key: str, timeout: float = 30.0) -> int | None:
    """The partition of ``logical`` holding a record keyed ``key`` (None if none appears in time)."""
    topic = s.topic(logical)
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.3):
                if not msg.error() and msg.key() == key.encode():
                    return int(msg.partition())
        return None
    finally:
        consumer.close()


def high_watermarks(s: Any, logical: str) -> dict[int, int]:
    """Records per partition of ``logical`` (its high watermarks; the topics here are never trimmed)."""
    topic = s.topic(logical)
    consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        consumer.close()


def busiest_partition(s: Any, logical: str) -> int:
    """The partition of ``logical`` holding the most records (the producer's one raw partition, the
    busiest symbol's md.tick partition, the account's order.commands partition)."""
    highs = high_watermarks(s, logical)
    return max(highs, key=lambda p: highs[p])


class TickTail(threading.Thread):
    """Follows md.tick from its end: (arrival wall time, producer receive time, partition) of each record."""

    def __init__(self, s: Any) -> None:
        super().__init__(daemon=True)
        self.s, self.stop_flag = s, threading.Event()
        self.seen: list[tuple[float, float, int]] = []
        self.lock = threading.Lock()
        topic = s.topic(topics.MD_TICK)
        self.consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}",
                                  "enable.auto.commit": False})
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in parts])
        self.codec = from_settings(s)

    def run(self) -> None:
        while not self.stop_flag.is_set():
            for msg in self.consumer.consume(500, timeout=0.2):
                if not msg.error():
                    rec = self.codec.decode(msg.value()).record
                    with self.lock:
                        self.seen.append((time.time(), rec["receive_time_ns"] / 1e9, int(msg.partition())))
        self.consumer.close()

    def recovery(self, fault_at: float, timeout: float = 120.0, partition: int | None = None) -> float:
        """Seconds from ``fault_at`` (wall time) until md.tick held a record whose frame the producer
        received after it (in ``partition`` only, when given: a fault on one md.tick partition leaves
        the others flowing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                after = [arrived for arrived, received, p in self.seen
                         if received > fault_at and partition in (None, p)]
            if after:
                return min(after) - fault_at
            time.sleep(0.2)
        with self.lock:
            last = self.seen[-3:]
        raise AssertionError(f"no new md.tick record {timeout:g} s after the fault at {fault_at:.1f}"
                             f"{'' if partition is None else f' in partition {partition}'}: {len(self.seen)} seen, "
                             f"the last (arrived, received, partition) {last}, alive {self.is_alive()}")

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time between ``start`` and the first record received after ``end`` (both wall
        times) in which no md.tick record arrived."""
        self.recovery(end)  # the stream flows again after ``end``: the last gap is closed
        with self.lock:
            arrivals = sorted(arrived for arrived, _, _ in self.seen if arrived > start)
        closing = next(i for i, a in enumerate(arrivals) if a > end)
        times = [start, *arrivals[:closing + 1]]
        return max(b - a for a, b in zip(times, times[1:]))


# ---------------------------------------------------------------------------------------------
# Orders


class Orders(threading.Thread):
    """Sends a signed command every ``every`` seconds through one durable producer (waiting out a
    fault: a command counts as sent once Kafka acknowledged it). Each command has its own price,
    so the counter's orders map back to commands; every 4th one has an odd lot (rejected)."""

    def __init__(self, s: Any, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.s, self.every = s, every
        self.stop_flag, self.pause_flag = threading.Event(), threading.Event()
        self.sent: list[dict[str, Any]] = []
        self.n = 0
        self.producer = Producer(durable_producer_config(s.kafka.client_config(), {"linger.ms": 0}))

    def command(self, valid: bool = True) -> dict[str, Any]:
        self.n += 1  # 000001.SZ, prev close 11.00: prices 10.01 .. 11.99 stay inside the ±10% band
        price = f"{Decimal('10.00') + Decimal(self.n % 199 + 1) / 100:.2f}"
        if self.n > 199:
            price = f"{Decimal('190.00') + Decimal(self.n % 1999 + 1) / 100:.2f}"  # then 300750.SZ
        symbol = "000001.SZ" if self.n <= 199 else "300750.SZ"
        return commands.place(ACCOUNT, symbol, "buy", price, 100 if valid else 150, KEY, ttl_s=600)

    def send(self, cmd: dict[str, Any]) -> None:
        commands.send(self.s, cmd, producer=self.producer)
        while self.producer.flush(5):
            pass  # a broker is paused or a leader moves: wait, as the real senders do
        self.sent.append(cmd)

    def run(self) -> None:
        while not self.stop_flag.wait(self.every):
            if not self.pause_flag.is_set():
                self.send(self.command(valid=self.n % 4 != 3))


class Events:
    """order.events from the beginning."""

    def __init__(self, s: Any) -> None:
        self.consumer = Consumer({**s.kafka.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}",
                                  "enable.auto.commit": False})
        topic = s.topic(topics.ORDER_EVENTS)
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self.seen: list[dict[str, Any]] = []
        self.codec = Codec()

    def read(self, seconds: float = 0.5) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for msg in self.consumer.consume(500, timeout=0.2):
                if not msg.error():
                    self.seen.append(self.codec.decode(msg.value(), expect="OrderEvent").record)

    def of(self, command_id: str) -> list[dict[str, Any]]:
        return [e for e in self.seen if e["command_id"] == command_id]

    def states(self, command_id: str) -> list[str]:
        return [e["state"] for e in self.of(command_id)]

    def settled(self, cmd_id: str) -> bool:
        got = self.of(cmd_id)
        return bool(got) and (got[-1]["state"] in TERMINAL or (got[-1]["state"] == "UNKNOWN"
                                                                and bool(got[-1]["reason"])))


def order_recovery(events: Events, orders: Orders, fault_at: float, timeout: float = 120.0) -> float:
    """Seconds from ``fault_at`` (wall time) until a command made after it was settled (polled every
    half second: the figure is that coarse)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events.read()
        if any(events.settled(c["command_id"]) for c in list(orders.sent) if c["event_time"] > fault_at * 1000):
            return time.time() - fault_at
    raise AssertionError(f"no command made after the fault at {fault_at:.1f} settled in {timeout:g} s")


# ---------------------------------------------------------------------------------------------
# The running system


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marketpipe", *args], env=env, capture_output=True, text=True,
                          timeout=180)


@pytest.fixture(scope="module")
def system(kafka_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("faults")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_", "JVQUANT_"))}
    env.update({"KAFKA_BOOTSTRAP_SERVERS": kafka_cluster.bootstrap, "MARKETPIPE_TOPIC_PREFIX": f"f{uuid.uuid4().hex[:8]}.",
                "MARKETPIPE_HOME": str(tmp / "home"), "MARKETPIPE_METRICS_PORT": "-1", "PYTHONUNBUFFERED": "1",
                "MARKETPIPE_REPLICATION_FACTOR": "3"})
    created = cli(env, "topics", "create")
    assert created.returncode == 0, created.stderr
    s = settings_mod.load(env)
    ref = tmp / "reference.json"
    ref.write_text(json.dumps(REFERENCE, ensure_ascii=False))
    counter = TradeCounter(fill_seconds=1.0)
    record = tmp / "jv.jsonl"
    logs = {name: tmp / f"{name}.log" for name in ("producer", "worker1", "worker2", "trader")}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    with run_sim("jvquant", rate=60, symbols=JV_CODES, record=record, extra_routes=counter.add_routes) as jv:
        jv_env = {**env, "JVQUANT_BASE_URL": jv.base_url, "JVQUANT_TOKEN": "tok"}
        trader_env = {**jv_env, "JVQUANT_TRADE_ACCOUNT": ACCOUNT, "JVQUANT_TRADE_PASSWORD": "pw",
                      "MARKETPIPE_ORDER_SIGNING_KEY": KEY, "MARKETPIPE_TRADER_REFERENCE": str(ref),
                      "MARKETPIPE_TRADER_POLL_SECONDS": "0.5", "MARKETPIPE_TRADER_MAX_ORDER_NOTIONAL": "1000000",
                      # the full form sends ~700 commands (from the 200th at ~20,000 each): the default
                      # 5,000,000 a day ran out during fault f and every later command was rejected
                      "MARKETPIPE_TRADER_MAX_DAILY_NOTIONAL": "100000000"}
        try:
            procs["worker1"] = start_worker(env, logs["worker1"])
            procs["worker2"] = start_worker(env, logs["worker2"])
            procs["producer"] = start_producer(jv_env, "jvquant", logs["producer"], "--codes", ",".join(JV_CODES),
                                               "--levels", "lv1,lv2", "--backoff-base", "0.1")
            procs["trader"] = subprocess.Popen([sys.executable, "-m", "marketpipe", "trade"], env=trader_env,
                                               stdout=open(logs["trader"], "ab"), stderr=subprocess.STDOUT,
                                               start_new_session=True)
            yield {"env": env, "settings": s, "sim": jv, "counter": counter, "record": record, "logs": logs,
                   "procs": procs, "cluster": kafka_cluster}
        finally:
            for name in ("producer", "trader", "worker1", "worker2"):
                if name in procs:
                    stop_worker(procs[name])


def tails(system: dict[str, Any], chars: int = 1500) -> str:
    return "\n".join(f"--- {n} ---\n{p.read_text(errors='replace')[-chars:]}" for n, p in system["logs"].items()
                     if p.exists())


def assert_alive(system: dict[str, Any]) -> None:
    dead = {n: p.returncode for n, p in system["procs"].items() if p.poll() is not None}
    assert not dead, f"processes exited: {dead}\n{tails(system)}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busier_worker(system: dict[str, Any], seconds: float = 3.0) -> str:
    """The processor worker that used more CPU over ``seconds``: the one decoding the producer's
    frames (the other holds no busy raw partition)."""
    names = ("worker1", "worker2")
    before = {n: cpu_seconds(system["procs"][n].pid) for n in names}
    time.sleep(seconds)
    return max(names, key=lambda n: cpu_seconds(system["procs"][n].pid) - before[n])


def kill_worker(system: dict[str, Any], name: str) -> None:
    """SIGKILL a worker's process group: nothing flushed, nothing committed, its group membership
    left to expire."""
    stop_worker(system["procs"][name], signal.SIGKILL)


def restart_worker(system: dict[str, Any], name: str) -> None:
    system["procs"][name] = start_worker(system["env"], system["logs"][name])


def audit(system: dict[str, Any]) -> dict[str, int]:
    """Pause the feed, wait until raw and md.tick hold what was sent, compare; then resume the feed.
    Cumulative counts since the start."""
    from tests.support.pipeline import quiesce, sent_trade_ids, source_key

    s, jv = system["settings"], system["sim"]
    stats = quiesce(jv, s, timeout=120)

    async def flush() -> None:
        jv.sim.recorder.flush()

    jv.call(flush())
    sent_frames = stats["totals"]["frames"]
    keys, _ = raw_frames(s)
    sent_trades = sent_trade_ids(system["record"])
    want = sum(sent_trades.values())
    deadline = time.monotonic() + 120
    while True:
        ticks = read_topic(s, topics.MD_TICK, idle=1, timeout=120)
        by_source: dict[Any, list[dict[str, Any]]] = {}
        for t in ticks:
            by_source.setdefault(source_key(t), []).append(t)
        if len(by_source) >= want or time.monotonic() > deadline:
            break
    jv.sim.fault("clear")
    got = Counter(f"{ts[0]['venue_symbol']}:{ts[0]['trade_id']}" for ts in by_source.values())
    return {
        # the simulator sends no bad frame: a dead letter here is a fault taken for a bad frame
        "dead_letters": sum(high_watermarks(s, topics.MD_DLQ).values()),
        "frames_sent": sent_frames, "frames_on_raw": len(keys),
        "frames_lost": sent_frames - len(keys), "frames_doubled": sum(n - 1 for n in keys.values()),
        "trades_sent": want, "ticks_distinct": len(by_source),
        "ticks_lost": sum((sent_trades - got).values()), "ticks_unexpected": sum((got - sent_trades).values()),
        "ticks_replayed": sum(len(ts) - 1 for ts in by_source.values()),
        "ticks_conflicting": sum(1 for ts in by_source.values() if any(t != ts[0] for t in ts)),
    }


def missing_trades(system: dict[str, Any]) -> list[str]:
    """The trades (code:trade_id) the simulator sent that md.tick lacks, for a failure message."""
    from tests.support.pipeline import sent_trade_ids

    ticks = read_topic(system["settings"], topics.MD_TICK, idle=1, timeout=120)
    got = Counter({f"{t['venue_symbol']}:{t['trade_id']}" for t in ticks})
    return sorted((sent_trade_ids(system["record"]) - got).elements())


# ---------------------------------------------------------------------------------------------


def healthy(cluster: Cluster, timeout: float = 180.0) -> float:
    """Wait until every node is back in every in-sync replica set (a restarted node catches up); the
    seconds it took. Each fault is one broker of three: a fault while the previous victim still
    catches up leaves partitions below min.insync.replicas=2, and writes rightly wait for it."""
    started = time.monotonic()
    wait_for(lambda: cluster.status().under_replicated == (), timeout, 1.0,
             what=lambda: f"under-replicated: {cluster.status().under_replicated}")
    return time.monotonic() - started


def outage(tail: TickTail, inflict: Callable[[], None], heal: Callable[[], None], hold: float,
           partition: int | None = None, during: Callable[[float], dict[str, Any]] | None = None,
           ) -> tuple[float, dict[str, Any]]:
    """Inflict a fault, heal it ``hold`` seconds later (in the background), and return the seconds
    from the fault to the first md.tick record received after it (in ``partition`` when given) and
    what ``during(fault time)`` measured meanwhile; returns once healed."""
    at = time.time()
    inflict()
    healer = threading.Timer(max(0.0, hold - (time.time() - at)), heal)
    healer.start()
    try:
        extra = during(at) if during is not None else {}
        return tail.recovery(at, timeout=hold + 90, partition=partition), extra
    finally:
        healer.join()


@pytest.mark.timeout(suite_timeout(FAULTS, KILLS))
def test_faults_on_a_three_broker_cluster_lose_and_double_nothing(system: dict[str, Any]) -> None:
    s, cluster, counter = system["settings"], system["cluster"], system["counter"]
    started = time.monotonic()
    print(f"\nfault suite: faults {','.join(FAULTS)}, {KILLS} leader kills, load average {load()}")
    wait_for(lambda: len(read_topic(s, topics.MD_TICK, idle=0.3, timeout=2)) > 100, timeout=120,
             what=lambda: "md.tick records before the faults\n" + tails(system))
    wait_for(lambda: "trader ready" in system["logs"]["trader"].read_text(errors="replace"), 90,
             what=lambda: "the trader ready\n" + tails(system))
    tail = TickTail(s)
    tail.start()
    orders = Orders(s)
    orders.start()
    events = Events(s)
    rows: list[dict[str, Any]] = []
    before = audit(system)
    print(f"baseline: md.tick {tail.recovery(time.time(), timeout=60):.1f} s after a moment without a fault")
    assert before["frames_lost"] == 0 and before["ticks_lost"] == 0, before

    windows: list[tuple[str, int, int]] = []  # fault, commands sent before it and by its audit
    mark = 0

    def checkpoint(name: str, recovery: float, extra: dict[str, Any] | None = None) -> None:
        nonlocal mark
        windows.append((name, mark, len(orders.sent)))
        mark = len(orders.sent)
        assert_alive(system)
        now = audit(system)
        prev = rows[-1]["cumulative"] if rows else before
        row = {"fault": name, "recovery_s": round(recovery, 1), "load": load(), "cumulative": now,
               **{k: now[k] - prev[k] for k in now}, **(extra or {})}
        rows.append(row)
        print(f"fault {name}: recovery {recovery:.1f} s, load {row['load']}, "
              + ", ".join(f"{k}={row[k]}" for k in now))
        assert now["frames_lost"] == 0 and now["frames_doubled"] == 0, (name, now)
        assert now["ticks_lost"] == 0 and now["ticks_unexpected"] == 0 and now["ticks_conflicting"] == 0, \
            (name, now, "missing: " + ", ".join(missing_trades(system)[:20]), tails(system, 4000))

    try:
        if "a" in FAULTS:
            for i in range(KILLS):
                healthy(cluster)
                mark = len(orders.sent)
                p = busiest_partition(s, "raw.jvquant")
                victim = cluster.leader_of(s.topic("raw.jvquant"), p)
                recovery, _ = outage(tail, partial(cluster.kill, victim), partial(cluster.restart, victim), DOWN_S)
                assert recovery < KILL_RECOVERY_BOUND_S, recovery
                checkpoint(f"a{i + 1} SIGKILL raw leader (node {victim}, p{p})", recovery)
        if "b" in FAULTS:
            for i in range(B_KILLS):
                healthy(cluster)
                mark = len(orders.sent)
                target = B_TARGETS[i % len(B_TARGETS)]
                p = busiest_partition(s, target)
                victim = cluster.leader_of(s.topic(target), p)
                led = {t: q for t in B_TARGETS for q in [busiest_partition(s, t)]
                       if cluster.leader_of(s.topic(t), q) == victim}
                also = [f"{t} p{q}" for t, q in led.items() if t != target]
                # recovery on the killed md.tick partition itself: the other symbols' partitions keep flowing
                recovery, extra = outage(tail, partial(cluster.kill, victim), partial(cluster.restart, victim), DOWN_S,
                                         partition=led.get(topics.MD_TICK),
                                         during=lambda at: {"command_settled_s": round(order_recovery(events, orders,
                                                                                                      at), 1)})
                assert recovery < KILL_RECOVERY_BOUND_S, recovery
                checkpoint(f"b{i + 1} SIGKILL {target} leader (node {victim}, p{p}"
                           + "".join(f", also {a}" for a in also) + ")", recovery, extra)
        if "c" in FAULTS:
            healthy(cluster)
            mark = len(orders.sent)
            p = busiest_partition(s, "raw.jvquant")
            victim = cluster.leader_of(s.topic("raw.jvquant"), p)
            recovery, _ = outage(tail, partial(cluster.pause, victim), partial(cluster.resume, victim), PAUSE_S)
            checkpoint(f"c SIGSTOP raw leader {PAUSE_S:.0f} s (node {victim}, p{p})", recovery)
            if recovery >= PAUSE_RECOVERY_AIM_S:
                print(f"fault c: recovery {recovery:.1f} s missed the aim of {PAUSE_RECOVERY_AIM_S:g} s")
            assert recovery < PAUSE_RECOVERY_BOUND_S, f"a paused leader stalled md.tick {recovery:.1f} s"
        if "d" in FAULTS:
            healthy(cluster)
            mark = len(orders.sent)
            at = time.time()
            steps = []
            for node in cluster.node_ids:
                t0 = time.monotonic()
                cluster.restart(node)  # SIGTERM: a controlled shutdown hands its leaderships over first
                back = time.monotonic() - t0
                steps.append(f"node {node} back {back:.0f} s, in sync {healthy(cluster):.0f} s later")
            end = time.time()
            gap = tail.longest_gap(at, end)
            checkpoint("d rolling restart (SIGTERM) of nodes " + ",".join(map(str, cluster.node_ids))
                       + "; recovery = the longest md.tick gap", gap,
                       {"roll_s": round(end - at, 1), "steps": "; ".join(steps)})
            assert gap < ROLL_GAP_BOUND_S, f"a rolling restart left md.tick without a record for {gap:.1f} s"
        if "e" in FAULTS:
            healthy(cluster)
            mark = len(orders.sent)
            orders.pause_flag.set()  # the designated command alone in flight
            time.sleep(2)
            counter.fault("slow", 6.0)  # /buy (and the trader's polls) answer after 6 s
            designated = orders.command()
            orders.send(designated)
            lp = partition_of_key(s, topics.ORDER_LEDGER, designated["command_id"])
            assert lp is not None, "no INTENT on order.ledger\n" + tails(system)
            victim = cluster.leader_of(s.topic(topics.ORDER_LEDGER), lp)
            at = time.time()
            cluster.kill(victim)  # INTENT written, /buy in progress: SUBMITTED goes to the new leader
            healer = threading.Timer(DOWN_S, partial(cluster.restart, victim))
            healer.start()
            try:
                orders.pause_flag.clear()
                counter.fault("clear")  # the /buy already waiting still takes its 6 s
                recovery = tail.recovery(at)
                deadline = time.monotonic() + 90
                while not events.settled(designated["command_id"]) and time.monotonic() < deadline:
                    events.read()
                settled_after = time.time() - at
            finally:
                healer.join()
            assert events.settled(designated["command_id"]), events.of(designated["command_id"])
            checkpoint(f"e SIGKILL ledger leader (node {victim}, p{lp})", recovery,
                       {"command_settled_s": round(settled_after, 1)})
        for i in range(KILLS if "f" in FAULTS else 0):
            healthy(cluster)
            mark = len(orders.sent)
            p = busiest_partition(s, "raw.jvquant")
            raw = s.topic("raw.jvquant")
            victim = cluster.leader_of(raw, p)
            worker = busier_worker(system)

            def worker_killed_in_election(at: float, raw: str = raw, p: int = p, victim: int = victim,
                                          worker: str = worker) -> dict[str, Any]:
                wait_for(lambda: cluster.leader_of(raw, p) != victim, 60, 0.25,
                         what=f"a new leader for {raw} p{p} after node {victim} was killed")
                killed = time.time() - at
                kill_worker(system, worker)
                time.sleep(WORKER_DOWN_S)
                restart_worker(system, worker)
                return {"worker_killed_after_s": round(killed, 1)}

            recovery, extra = outage(tail, partial(cluster.kill, victim), partial(cluster.restart, victim), DOWN_S,
                                     during=worker_killed_in_election)
            checkpoint(f"f{i + 1} SIGKILL raw leader (node {victim}, p{p}) and {worker} in the election", recovery,
                       extra)
            assert recovery < WORKER_KILL_RECOVERY_BOUND_S, \
                f"a worker killed in an election stalled md.tick {recovery:.1f} s"
    finally:
        orders.stop_flag.set()
        orders.join(60)
        tail.stop_flag.set()
        tail.join(10)

    # orders: exactly one /buy per accepted command, none for a rejected one, each settled
    deadline = time.monotonic() + 120
    while not all(events.settled(c["command_id"]) for c in orders.sent) and time.monotonic() < deadline:
        events.read(1.0)
    assert_alive(system)
    placed = Counter((o.code, o.price) for o in counter.placed_orders())
    unsettled, wrong = [], []
    accepted = rejected = 0

    def buys(cmd: dict[str, Any]) -> int:
        return placed[(cmd["symbol"].split(".")[0], Decimal(str(cmd["price"])))]

    idle = []  # faults no accepted command went through: their order audit would prove nothing
    for name, start, end in windows:
        sent = orders.sent[start:end]
        ok = [c for c in sent if "ACCEPTED" in events.states(c["command_id"])]
        print(f"orders around fault {name}: {len(sent)} sent, {len(ok)} accepted (/buy per command: "
              f"{sorted(Counter(buys(c) for c in ok).items())}), {len(sent) - len(ok)} rejected "
              f"(/buy: {sum(buys(c) for c in sent if c not in ok)})")
        if not ok:
            idle.append(name)
    if "e" in FAULTS:
        states = events.states(designated["command_id"])
        print(f"fault e command: states {states}, /buy calls {buys(designated)}")
        assert buys(designated) == 1 and states.count("SUBMITTED") == 1 and states[-1] == "FILLED", states
    for cmd in orders.sent:
        states = events.states(cmd["command_id"])
        if not events.settled(cmd["command_id"]):
            unsettled.append((cmd["command_id"], states))
        n = buys(cmd)
        if "ACCEPTED" in states:
            accepted += 1
            if n != 1:
                wrong.append((cmd["command_id"], states, n))
        else:
            rejected += 1
            if n != 0 or states[-1:] != ["REJECTED"]:
                wrong.append((cmd["command_id"], states, n))
    print(f"orders: {len(orders.sent)} commands sent, {accepted} accepted, {rejected} rejected, "
          f"/buy calls {sum(placed.values())}, unsettled {len(unsettled)}, wrong {len(wrong)}")
    print("fault rows: " + json.dumps([{k: v for k, v in r.items() if k != "cumulative"} for r in rows]))
    print(f"fault suite took {time.monotonic() - started:.0f} s, load average {load()}")
    rules = Counter(e["rule"] for e in events.seen if e["state"] == "REJECTED")
    print(f"rejections by rule: {dict(rules)}")
    producer = system["procs"]["producer"]
    stop_worker(producer)  # SIGTERM: flushes and exits 0 even after the faults
    assert producer.returncode == 0, tails(system)
    assert not unsettled, unsettled[:5]
    assert not wrong, wrong[:5]
    assert not idle, f"no command accepted around faults {idle}: {dict(rules)}"
    # every topic is RF 3, min.insync.replicas 2: the start-up durability check must stay silent
    weak = [n for n, p in system["logs"].items() if "durability weaker" in p.read_text(errors="replace")]
    assert not weak, f"a durability warning on a durable cluster: {weak}\n{tails(system)}"
    assert accepted > 0 and rejected > 0
    assert sum(placed.values()) == accepted
