"""marketpipe/processors/split.py: the default `marketpipe process`, a worker per agent set."""

from __future__ import annotations

import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from marketpipe.processors import split
from marketpipe.processors.app import build_app, group_id, worker_groups
from marketpipe.settings import load


def test_the_default_deployment_is_a_normalize_and_a_bars_worker_in_groups_of_their_own() -> None:
    s = load({"MARKETPIPE_TOPIC_PREFIX": "p.", "MARKETPIPE_METRICS_PORT": "9100", "MARKETPIPE_BAR_GRACE": "3s"})
    assert s.processor.agents == "split"
    planned = split.children(s, {"PATH": "/bin", "MARKETPIPE_PROCESSOR_AGENTS": "split"}, "WARNING", 6066)
    assert [c.agents for c in planned] == ["normalize", "bars"]
    for i, c in enumerate(planned):
        assert c.argv[1:] == ["-m", "marketpipe", "--log-level", "WARNING", "process", "--agents", c.agents,
                              "--web-port", str(6066 + i)]
        assert c.env["MARKETPIPE_PROCESSOR_AGENTS"] == c.agents  # the child's, not the inherited one
        assert c.env["MARKETPIPE_METRICS_PORT"] == str(9100 + i)  # two endpoints on one host
        assert c.env["MARKETPIPE_BAR_GRACE"] == "3s" and c.env["PATH"] == "/bin"
    assert worker_groups(s) == ["marketpipe-processors-normalize-p", "marketpipe-processors-bars-p"]
    assert worker_groups(s.with_env(MARKETPIPE_PROCESSOR_AGENTS="all")) == ["marketpipe-processors-p"]


@pytest.mark.parametrize("port", ["0", "-1"])
def test_a_picked_or_disabled_metrics_port_stays_so_for_each_child(port: str) -> None:
    planned = split.children(load({"MARKETPIPE_METRICS_PORT": port}), {}, None, 0)
    assert [c.env["MARKETPIPE_METRICS_PORT"] for c in planned] == [port, port]
    assert all("--web-port" not in c.argv and "--log-level" not in c.argv for c in planned)


def test_a_split_setting_cannot_build_one_faust_app(tmp_path) -> None:
    s = load({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "MARKETPIPE_HOME": str(tmp_path)})
    with pytest.raises(ValueError, match="marketpipe process"):
        build_app(s)
    with pytest.raises(ValueError, match="worker_groups"):
        group_id(s)


def child(tmp_path: Path, name: str, body: str) -> split.Child:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(body))
    return split.Child(name, [sys.executable, str(script)], {})


def test_when_one_worker_exits_the_other_is_stopped_and_its_code_is_the_exit_code(tmp_path) -> None:
    stopped = tmp_path / "stopped"
    lasting = child(tmp_path, "normalize", f"""
        import pathlib, signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: (pathlib.Path({str(stopped)!r}).write_text("yes"), sys.exit(0)))
        time.sleep(60)
    """)
    failing = child(tmp_path, "bars", "import sys, time; time.sleep(0.5); sys.exit(70)")
    started = time.monotonic()
    assert split.run([lasting, failing]) == 70
    assert stopped.read_text() == "yes" and time.monotonic() - started < 20


def test_a_stop_signal_reaches_every_worker_once(tmp_path) -> None:
    marks = tmp_path / "marks"
    body = f"""
        import pathlib, signal, sys, time
        def stop(*_):
            with open({str(marks)!r}, "a") as f:
                f.write(sys.argv[0] + "\\n")
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        time.sleep(60)
    """
    workers = [child(tmp_path, "normalize", body), child(tmp_path, "bars", body)]
    signal.signal(signal.SIGALRM, lambda *_: signal.raise_signal(signal.SIGTERM))
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        assert split.run(workers) == 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
    assert sorted(Path(line).stem for line in marks.read_text().split()) == ["bars", "normalize"]


def test_no_worker_outlives_a_parent_killed_alone(tmp_path) -> None:
    # kill -9 of the parent's pid only (not its group): the workers get SIGTERM from the kernel
    import os
    import subprocess

    pids = tmp_path / "pids"
    parent = tmp_path / "parent.py"
    parent.write_text(textwrap.dedent(f"""
        import sys
        from marketpipe.processors import split
        body = "import os, time; open({str(pids)!r}, 'a').write(str(os.getpid()) + '\\\\n'); time.sleep(60)"
        split.run([split.Child(n, [sys.executable, "-c", body], {{}}) for n in ("normalize", "bars")])
    """))
    proc = subprocess.Popen([sys.executable, str(parent)], env={**os.environ, "PYTHONPATH": str(Path(split.__file__).parents[2])})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(pids.read_text().split() if pids.exists() else []) < 2:
        time.sleep(0.05)
    workers = [int(p) for p in pids.read_text().split()]
    proc.kill()
    proc.wait()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in workers):
        time.sleep(0.05)
    assert len(workers) == 2 and not any(alive(p) for p in workers)
