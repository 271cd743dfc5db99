"""Start a set of marketpipe processes and make sure none outlives us.

Every child leads its own process group (so a child's own children die with it), writes
its output to a log file, and is stopped with SIGTERM, then SIGKILL after a grace period.
An ``atexit`` hook and signal handlers stop the group even when the caller fails.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence


@dataclass
class Child:
    name: str
    cmd: list[str]
    log: Path
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def returncode(self) -> int | None:
        return self.proc.poll()


class Supervisor:
    def __init__(self, log_dir: Path, grace: float = 10.0) -> None:
        self.log_dir = log_dir
        self.grace = grace
        self.children: list[Child] = []
        log_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop_all)

    def start(self, name: str, cmd: Sequence[str], env: Mapping[str, str]) -> Child:
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(list(cmd), env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        child = Child(name, list(cmd), log, proc)
        self.children.append(child)
        return child

    def exited(self) -> list[Child]:
        return [c for c in self.children if c.returncode() is not None]

    def stop(self, child: Child) -> int | None:
        if child.returncode() is None:
            self._signal(child, signal.SIGTERM)
            try:
                child.proc.wait(self.grace)
            except subprocess.TimeoutExpired:
                self._signal(child, signal.SIGKILL)
                child.proc.wait(5)
        else:  # the leader is gone; make sure nothing it started is left in its group
            self._signal(child, signal.SIGKILL)
        return child.returncode()

    def stop_all(self, first: Sequence[str] = (), drain: float = 0.0) -> dict[str, int | None]:
        """Stop the children whose names start with one of ``first`` (the sources), wait ``drain``
        seconds so the rest can finish what the sources handed them, then stop the others in
        reverse start order."""
        codes: dict[str, int | None] = {}
        sources = [c for c in self.children if c.name.startswith(tuple(first))] if first else []
        for child in sources:
            codes[child.name] = self.stop(child)
        if sources and drain > 0:
            time.sleep(drain)
        for child in reversed(self.children):
            if child not in sources:
                codes[child.name] = self.stop(child)
        return codes

    @staticmethod
    def _signal(child: Child, sig: int) -> None:
        try:
            os.killpg(child.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def log_tail(self, child: Child, lines: int = 8) -> str:
        try:
            return "\n".join(child.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
