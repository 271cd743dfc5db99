"""``marketpipe demo`` itself, the README's first command, on the session broker."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.test_demo_parts import _alive


def test_demo_runs_the_pipeline_trades_summarizes_and_leaves_no_process_behind(mp_env, schema_registry_url,
                                                                               tmp_path) -> None:
    # with a registry, as `make demo` runs by default (here the session's, rather than one more)
    env = {**mp_env, "SCHEMA_REGISTRY_URL": schema_registry_url}
    run = subprocess.run([sys.executable, "-m", "marketpipe", "demo", "--seconds", "35", "--bar", "2s",
                          "--orders-after", "6"], env=env, capture_output=True, text=True, timeout=300)
    out, err = run.stdout, run.stderr
    assert run.returncode == 0, err[-3000:]
    started = {name: int(pid) for name, pid in re.findall(r"started (\S+) \(pid (\d+)\)", err)}
    assert set(started) == {"sim-jvquant", "sim-infoway", "sim-jin10", "producer-jvquant", "producer-infoway",
                            "producer-jin10", "processor", "trader"}
    assert not [name for name, pid in started.items() if _alive(pid)]  # no orphans
    summary = out[out.rindex("summary"):]
    counts = {topic: int(n) for topic, n in re.findall(r"^\s+(\S+)\s+(\d+) records$", summary, re.M)}
    for topic in ("raw.jvquant", "raw.infoway", "raw.jin10", "md.tick", "md.quote", "md.bar"):
        assert counts.get(topic, 0) > 0, (topic, summary)
    # two valid orders (accepted, submitted, fills) and one refused by the lot rule
    assert counts.get("order.events", 0) >= 5, summary
    assert re.search(r"dead letters\s+0$", summary, re.M), summary
    assert re.search(r"latency .*p50 [\d.]+ ms, p90 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms", summary), summary
    # stdout is a pipe here, not a terminal: a status line every few seconds, not one view at the end
    assert len(re.findall(r"^elapsed \d+s · records ", out[:out.rindex("summary")], re.M)) >= 4, out[:3000]
    # every md.* and order.* record in the Confluent wire format: the summary names the registry's ids
    framings = dict(re.findall(r"^\s+((?:md|order)\.\S+)\s+(\w+ (?:id \d+|single-object).*)$", summary, re.M))
    for topic in ("md.tick", "md.quote", "md.bar", "order.events"):
        assert re.fullmatch(r"\w+ id \d+", framings.get(topic, "")), (topic, summary)
    logs = mp_env["MARKETPIPE_HOME"] + "/demo/logs"
    trader_log = open(f"{logs}/trader.log").read()
    assert "lot_size" in trader_log and "FILLED" in trader_log, trader_log[-2000:]


def test_a_closed_output_pipe_and_ctrl_c_still_stop_the_broker_and_registry_the_demo_started(mp_env, tmp_path) -> None:
    """`make demo 2>&1 | tee demo.log`, then Ctrl-C: tee is gone before the demo's clean-up
    prints; the broker and the registry it started must be stopped all the same."""
    import os
    import signal
    import time

    from marketpipe.runtime.localhost import free_port

    env = {k: v for k, v in mp_env.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}  # the demo starts its own
    env.update({"MARKETPIPE_KAFKA_PORT": str(free_port()), "MARKETPIPE_REGISTRY_PORT": str(free_port()),
                "DOCKER_HOST": "unix:///nonexistent.sock"})  # the local launcher even where Docker answers
    home = env["MARKETPIPE_HOME"]
    demo = subprocess.Popen([sys.executable, "-m", "marketpipe", "demo", "--seconds", "300"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert demo.stdout is not None
    seen = []
    try:
        for line in demo.stdout:
            seen.append(line.decode(errors="replace"))
            if "started processor" in seen[-1]:
                break
        pids = {name: int(open(f"{home}/{name}").read()) for name in ("kafka/broker.pid", "registry/registry.pid")}
    finally:
        demo.stdout.close()  # the pipe's reader is gone
        demo.send_signal(signal.SIGINT)
        demo.wait(120)
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.2)  # the polling step
    left = [name for name, pid in pids.items() if _alive(pid)]
    for name in left:
        os.killpg(pids[name], signal.SIGKILL)
    assert not left, "".join(seen[-20:])
