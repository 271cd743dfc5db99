"""The whole pipeline on this machine, from one call: :func:`run` (the ``marketpipe demo`` command;
what it does, step by step, is its help text in marketpipe/cli/demo.py).

:func:`plan` decides what to start, in order (a provider whose credential is set is used for real,
the others through their simulators); :func:`run` starts it, sends the demo orders, shows the live
view and stops everything it started, the broker and registry too, whatever happens to its output.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marketpipe import providers
from marketpipe.runtime.localhost import free_port, wait_port
from marketpipe.settings import Settings

DEMO_SIGNING_KEY = "marketpipe-demo-signing-key"
DEMO_ACCOUNT = "000000000001"

LIVE_TOPICS = (*(p.raw_topic for p in providers.PROVIDERS), "md.tick", "md.quote", "md.depth", "md.kline",
               "md.bar", "md.dlq", "order.events")
#: seconds between two status lines when stdout is not a terminal
STATUS_EVERY = 5.0
#: the provider whose trade API the trader uses
TRADER_PROVIDER = "jvquant"


@dataclass(frozen=True)
class DemoOptions:
    """What ``marketpipe demo``'s flags choose (the defaults are the command's)."""

    seconds: float = 0  # stop after this long; 0: until Ctrl-C
    bar: str = "5s"  # bar length of the processor
    rate: int = 200  # simulated rows per second per provider
    clock_speed: float = 1.0  # simulated clock speed-up
    no_registry: bool = False  # no local Schema Registry: Avro single-object encoding
    keep_broker: bool = False  # leave a broker (and registry) the demo started running
    orders_after: float = 8.0  # seconds until the demo orders are sent


@dataclass
class Step:
    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None  # wait until it listens here before starting the next step


def plan(settings: Settings, options: DemoOptions, env: dict[str, str]) -> list[Step]:
    """What to start, in order. A provider whose credential (``live_env``) is set is used for real."""
    steps: list[Step] = []
    speed = ["--clock-speed", str(options.clock_speed)] if options.clock_speed != 1 else []
    producer_env: dict[str, dict[str, str]] = {}
    for entry in providers.PROVIDERS:
        if env.get(entry.live_env):
            producer_env[entry.name] = {}
            continue
        port = free_port()
        steps.append(Step(f"sim-{entry.name}", ["sim", entry.name, "--port", str(port), "--rate", str(options.rate),
                                                *speed], port=port))
        producer_env[entry.name] = entry.sim_env(port)
    trader_env = dict(producer_env[TRADER_PROVIDER])
    if trader_env:  # the simulator's trade API: a demo account, and reference data for its instruments
        trader_env.update({"JVQUANT_TRADE_ACCOUNT": DEMO_ACCOUNT, "JVQUANT_TRADE_PASSWORD": "demo",
                           "MARKETPIPE_TRADER_REFERENCE": env.get("MARKETPIPE_TRADER_REFERENCE") or simulator_reference(
                               settings.home / "demo" / "reference.json")})
    # simulators trade every day, so on a weekend or holiday their clock times are that day's, not
    # the last trading day's; a live feed of clock times keeps the exchange calendar
    calendar = "every-day" if all(producer_env[p.name] for p in providers.PROVIDERS if p.clock_times) else "exchange"
    # consumers before producers: the processor joins its group while nothing queues up yet
    steps += [
        Step("processor", ["process", "--bar-interval", options.bar, "--trading-calendar", calendar]),
        Step("trader", ["trade"], {**trader_env, "MARKETPIPE_ORDER_SIGNING_KEY": env.get(
            "MARKETPIPE_ORDER_SIGNING_KEY") or DEMO_SIGNING_KEY}),
    ]
    steps += [Step(f"producer-{entry.name}", ["produce", entry.name, "--codes", ",".join(entry.demo_codes)],
                   producer_env[entry.name]) for entry in providers.PROVIDERS]
    return steps


def simulator_reference(path: Path) -> str:
    """The trader's reference data (previous closes, names, ST flags) for the simulated A-shares.

    Against the real jvQuant, ``MARKETPIPE_TRADER_REFERENCE`` must name a file built from the
    exchange's previous closes; the simulator's closes are its instruments' ``prev_close``.
    """
    import json

    from marketpipe.simulators.market import UNIVERSE

    ref = {f"{i.code}.{i.exchange}": {"prev_close": f"{i.prev_close:.{i.price_decimals}f}", "name": i.name,
                                     "st": "ST" in i.name}
           for i in UNIVERSE if i.exchange in ("SH", "SZ", "BJ") and i.kind != "index"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ref, ensure_ascii=False, indent=1), encoding="utf-8")
    return str(path)


def demo_orders(env: dict[str, str]) -> list[list[str]]:
    """Signed commands the demo sends: two valid orders and one that breaks the lot rule."""
    base = ["order", "place", "--account", DEMO_ACCOUNT]
    return [
        [*base, "--symbol", "600519.SH", "--side", "buy", "--price", "1500.00", "--volume", "100"],
        [*base, "--symbol", "000001.SZ", "--side", "buy", "--price", "11.00", "--volume", "200"],
        [*base, "--symbol", "600519.SH", "--side", "buy", "--price", "1500.00", "--volume", "150"],  # lot rule
    ]


class Watcher:
    """Reads the pipeline's topics from their current end and feeds a LiveState."""

    def __init__(self, settings: Settings) -> None:
        import uuid

        from confluent_kafka import OFFSET_END, Consumer, TopicPartition

        from marketpipe.liveview import LiveState
        from marketpipe.schemas import codec

        self.settings = settings
        self.state = LiveState(measuring=False)
        self.codec = codec.from_settings(settings)
        from marketpipe.kafka.quietlog import rdkafka_logger

        self.consumer = Consumer({**settings.kafka.client_config(), **rdkafka_logger(),
                                   "group.id": f"marketpipe-demo-{uuid.uuid4().hex[:8]}",
                                  "enable.auto.commit": False})
        md = self.consumer.list_topics(timeout=15)
        self.logical = {settings.topic(t): t for t in LIVE_TOPICS}
        assignment = [TopicPartition(name, p, OFFSET_END) for name in self.logical
                      if name in md.topics for p in md.topics[name].partitions]
        self.consumer.assign(assignment)

    def pump(self, budget: float = 0.2) -> None:
        from marketpipe.kafka.clients import readable_now
        from marketpipe.rawframe import header_dict
        from marketpipe.schemas.codec import CodecError

        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            msgs = readable_now(self.consumer, 0.05)  # stamped as they become readable
            if not msgs:
                self.state.measuring = True  # caught up: from now on a record is read as it arrives
                continue
            now_ns = time.time_ns()
            for msg in msgs:
                if msg.error():
                    continue
                topic = self.logical.get(msg.topic(), msg.topic())
                if topic.startswith("raw."):
                    self.state.on_raw(header_dict(msg.headers()).get("provider") or topic[4:])
                    continue
                try:
                    decoded = self.codec.decode(msg.value() or b"")
                except CodecError:
                    self.state.counts[f"{topic} (undecodable)"] += 1
                    continue
                self.state.on_record(topic, decoded.schema, decoded.record, now_ns, decoded.schema_id)

    def close(self) -> None:
        self.consumer.close()


def latency_line(summary: dict[str, Any]) -> str:
    """The tick latency percentiles of a :meth:`LiveState.summary`, or "n/a" without samples."""
    if summary["latency_ms_p50"] is None:
        return "n/a"
    parts = ", ".join(f"{name} {summary[f'latency_ms_{name}']:.1f} ms" for name in ("p50", "p90", "p99", "max"))
    line = f"{parts} ({summary['latency_samples']} ticks)"
    if summary["latency_recent_samples"] < summary["latency_samples"]:  # the run outlasted the window
        line += (f"; p99 of the last {summary['latency_recent_s']:.0f} s {summary['latency_recent_ms_p99']:.1f} ms "
                 f"({summary['latency_recent_samples']} ticks)")
    return line


class ForgivingStream:
    """A text stream that drops what it cannot write once its reader is gone (a closed pipe), so
    that a print can never abort the demo's clean-up: the broker it started must be stopped."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            except (BrokenPipeError, ValueError, OSError):  # ValueError: the stream was closed
                self.broken = True
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self.broken = True

    def isatty(self) -> bool:
        try:
            return not self.broken and self.stream.isatty()
        except (ValueError, OSError):
            return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def run(settings: Settings, options: DemoOptions) -> int:
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ForgivingStream(sys.stdout), ForgivingStream(sys.stderr)
    # a hang-up (the terminal closed) is a stop like SIGTERM, not a death that leaves the broker running
    signal.signal(signal.SIGHUP, _hang_up)
    try:
        return _run_with_services(options, settings)
    finally:
        sys.stdout, sys.stderr = streams


def _hang_up(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run_with_services(options: DemoOptions, settings: Settings) -> int:
    from marketpipe.kafka import broker

    # a local broker the demo starts is stopped at the end too (unless --keep-broker)
    local = None if settings.kafka.external or broker.compose_kafka_ready() else broker.local_broker(settings)
    started_broker = local is not None and local.pid() is None
    registry = None
    try:
        if broker.up(settings, timeout=120.0) != 0:
            return 1
        registry, settings = start_registry(options, settings)
        return _run_pipeline(options, settings)
    finally:
        # a second Ctrl-C must not cut the clean-up short
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            # a kept broker keeps Confluent-framed records whose ids only this in-memory registry knows
            # (a new one would hand the same ids to other schemas): the two are kept together
            if registry is not None and not options.keep_broker:
                registry.down()
            if started_broker and local is not None and not options.keep_broker:
                local.down()
                print("stopped the local Kafka broker (--keep-broker keeps it)", file=sys.stderr)
        finally:
            signal.signal(signal.SIGINT, previous)


def start_registry(options: DemoOptions, settings: Settings) -> tuple[Any, Settings]:
    """The registry the demo writes with: SCHEMA_REGISTRY_URL, else a local Apicurio it starts (and
    returns, to be stopped), else none (one line says why: single-object encoding)."""
    if settings.schema_registry_url:
        print(f"Schema Registry: {settings.schema_registry_url} (SCHEMA_REGISTRY_URL)", file=sys.stderr)
        return None, settings
    if options.no_registry:
        print("no Schema Registry (--no-registry): records in Avro single-object encoding", file=sys.stderr)
        return None, settings
    from marketpipe.kafka.local import LauncherError
    from marketpipe.registry_local import local_registry

    registry = local_registry(settings)
    ours = registry.pid() is None  # one `marketpipe registry up` started is reused and left running
    try:
        url = registry.up()
    except LauncherError as exc:
        reason = str(exc).splitlines()[0]
        print(f"no Schema Registry ({reason}): records in Avro single-object encoding", file=sys.stderr)
        return None, settings
    return (registry if ours else None), settings.with_env(SCHEMA_REGISTRY_URL=url)


def create_topics(settings: Settings) -> bool:
    """Create the declared topics that are missing and print them as ``marketpipe topics create``
    does; False (with one line saying why) when the broker would not."""
    from marketpipe.kafka import topics

    try:
        result = topics.create_topics(settings.kafka.client_config(), prefix=settings.topic_prefix)
    except Exception as exc:  # a broker problem must read as one line
        print(f"marketpipe topics create: {exc} (is the broker up? `marketpipe kafka up`)", file=sys.stderr, flush=True)
        return False
    for line in topics.describe_created(result, settings.topic_prefix):
        print(line)
    return True


def _run_pipeline(options: DemoOptions, settings: Settings) -> int:
    from marketpipe.runtime.supervisor import Supervisor

    if not create_topics(settings):
        return 1
    env = dict(os.environ)
    env.setdefault("KAFKA_BOOTSTRAP_SERVERS", settings.kafka.bootstrap_servers)
    if settings.schema_registry_url:
        env["SCHEMA_REGISTRY_URL"] = settings.schema_registry_url
    env["MARKETPIPE_METRICS_PORT"] = "0"  # every process picks a free port and prints it in its log
    env["PYTHONUNBUFFERED"] = "1"
    sup = Supervisor(settings.home / "demo" / "logs")
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    exe = [sys.executable, "-m", "marketpipe"]
    try:
        for step in plan(settings, options, env):
            child = sup.start(step.name, exe + step.args, {**env, **step.env})
            print(f"started {step.name} (pid {child.pid}); log {child.log}", file=sys.stderr)
            if step.port and not wait_port(step.port):
                print(f"{step.name} did not listen on {step.port}:\n{sup.log_tail(child)}", file=sys.stderr)
                return 1
            if step.name == "processor":
                from marketpipe.processors.readiness import wait_until_consuming

                # frames produced before the worker owns its partitions would only wait in Kafka and
                # show up as start-up latency
                if not wait_until_consuming(settings, 90):
                    print(f"processor did not join its consumer group in 90 s:\n{sup.log_tail(child)}",
                          file=sys.stderr)
        watcher = Watcher(settings)
        return _live(options, settings, sup, watcher, exe, env, stop)
    except KeyboardInterrupt:
        return 0
    finally:
        # producers first, so the processor and trader finish what was received before they stop
        codes = sup.stop_all(first=("producer-",), drain=3.0)
        print("stopped: " + ", ".join(f"{name} ({'exit ' + str(c) if c is not None else '?'})"
                                      for name, c in codes.items()), file=sys.stderr)


def _live(options: DemoOptions, settings: Settings, sup: Any, watcher: Watcher, exe: list[str],
          env: dict[str, str], stop: threading.Event) -> int:
    import subprocess

    from rich.console import Console
    from rich.live import Live

    from marketpipe.liveview import render, status_line

    console = Console(stderr=False)
    started = time.monotonic()
    orders_sent = False
    reported: set[str] = set()
    signing = {"MARKETPIPE_ORDER_SIGNING_KEY": env.get("MARKETPIPE_ORDER_SIGNING_KEY") or DEMO_SIGNING_KEY}

    def send_orders() -> None:
        for cmd in demo_orders(env):
            run = subprocess.run(exe + cmd, env={**env, **signing}, capture_output=True, text=True, timeout=60)
            if run.returncode:
                console.log(f"demo order {' '.join(cmd[2:])} failed: {run.stderr.strip()[-500:]}")

    def processes() -> list[tuple[str, int, str]]:
        rows = []
        for c in sup.children:
            rc = c.returncode()
            rows.append((c.name, c.pid, "running" if rc is None else f"exited {rc}"))
        return rows

    # not a terminal (make demo | tee demo.log): a live view would show nothing until the end
    plain = not console.is_terminal
    last_line = started
    try:
        with contextlib.nullcontext() if plain else Live(render(watcher.state, processes(), 0), console=console,
                                                         refresh_per_second=4, transient=False) as live:
            while not stop.is_set():
                elapsed = time.monotonic() - started
                if options.seconds and elapsed >= options.seconds:
                    break
                watcher.pump(0.25)
                if not orders_sent and elapsed > options.orders_after:
                    # in the background: the view keeps reading while the order commands start up
                    threading.Thread(target=send_orders, daemon=True, name="demo-orders").start()
                    orders_sent = True
                for child in sup.exited():
                    if child.name not in reported:
                        reported.add(child.name)
                        console.log(f"{child.name} exited with {child.returncode()}:\n{sup.log_tail(child)}")
                if live is not None:
                    live.update(render(watcher.state, processes(), elapsed))
                elif time.monotonic() - last_line >= STATUS_EVERY:
                    last_line = time.monotonic()
                    print(status_line(watcher.state, elapsed), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.close()
    summary = watcher.state.summary()
    print("\nsummary")
    for topic, n in summary["records"].items():
        print(f"  {topic:24} {n:>10} records")
    print(f"  dead letters            {summary['dlq']:>10}")
    print(f"  end-to-end tick latency (receive -> readable on md.tick): {latency_line(summary)}")
    for topic, framing in summary["framings"].items():
        print(f"  {topic:24} {framing}")
    if watcher.state.replayed:
        print(f"  ticks received before this run and processed again: {watcher.state.replayed} "
              "(at-least-once replay after an earlier stop; dedupe on source)")
    return 0
