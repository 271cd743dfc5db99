"""``marketpipe process`` by default: one worker process per agent set, started and stopped together.

A bar batch (Avro decode of every tick, a snapshot per touched book) held the event loop that
fetched raw frames wait on, and was most of a combined worker's tail latency on md.tick
(bench/README.md, issue 19). In a process of its own the bar agent only costs CPU; normalize keeps
its loop. Each set is its own consumer group (``processors.app.group_id``), so the two scale
apart: start more ``--agents normalize`` or ``--agents bars`` workers beside this one.

The parent does no Kafka work. It forwards SIGTERM/SIGINT, and when one child exits it stops the
other and exits with the first one's code, so a supervisor (systemd, Kubernetes, compose) restarts
the pair as one unit.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from marketpipe.settings import Settings

#: the agent sets a split deployment runs, in start order (bars reads what normalize writes)
SETS = ("normalize", "bars")
#: how long a child may take to stop after SIGTERM (Faust commits offsets and flushes on the way out)
STOP_GRACE_S = 30.0


@dataclass(frozen=True)
class Child:
    agents: str
    argv: list[str]
    env: dict[str, str]


def _port(base: int, index: int) -> int:
    """The n-th child's port from the configured one: 0 (pick one) and -1 (off) stay as they are."""
    return base + index if base > 0 else base


def children(settings: Settings, environ: Mapping[str, str], log_level: str | None, web_port: int) -> list[Child]:
    """What to start: the same command with ``--agents`` set, the settings passed as environment (flags
    included), each child with its own metrics and web port."""
    out = []
    for i, agents in enumerate(SETS):
        env = {**environ, **settings.env, "MARKETPIPE_PROCESSOR_AGENTS": agents,
               "MARKETPIPE_METRICS_PORT": str(_port(settings.metrics_port, i))}
        argv = [sys.executable, "-m", "marketpipe", *(["--log-level", log_level] if log_level else []), "process",
                "--agents", agents, *(["--web-port", str(_port(web_port, i))] if web_port else [])]
        out.append(Child(agents, argv, env))
    return out


def run(planned: Sequence[Child]) -> int:
    """Start every child, wait until one exits or a stop signal arrives, stop the rest; the exit code
    of the first child to exit (0 when stopped by a signal and every child stopped cleanly)."""
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    before_exec = _parent_death_signal()
    try:
        for child in planned:
            # in our process group, so whoever signals the group (a terminal's Ctrl-C, a supervisor's
            # kill -9) reaches the workers too: a second stop signal is one Faust ignores
            procs.append(subprocess.Popen(child.argv, env=child.env, preexec_fn=before_exec))
        first = _wait_any(procs)
        code = procs[first].returncode
        if not stopping:
            print(f"marketpipe process: the {planned[first].agents} worker exited ({code}); stopping the others",
                  file=sys.stderr, flush=True)
        stop(signal.SIGTERM, None)
        codes = [_reap(p) for p in procs]
        return code if code else max(codes, key=abs)
    finally:
        stop(signal.SIGTERM, None)  # also when starting a child failed
        for p in procs:
            _reap(p)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_PR_SET_PDEATHSIG = 1


def _parent_death_signal() -> Callable[[], None] | None:
    """What a child runs before exec so that it gets SIGTERM when the parent dies, even by a SIGKILL
    to the parent alone (Linux), and no worker outlives the command that started it. Looked up here,
    in the parent: the child runs it between fork and exec, where loading a library is not safe."""
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the process group still reaches the workers
        return None
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_any(procs: Sequence[subprocess.Popen[bytes]]) -> int:
    while True:
        for i, p in enumerate(procs):
            try:
                p.wait(0.2)
                return i
            except subprocess.TimeoutExpired:
                continue


def _reap(p: subprocess.Popen[bytes]) -> int:
    try:
        return p.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()
