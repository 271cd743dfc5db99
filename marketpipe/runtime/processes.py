"""Background services marketpipe starts on this machine and finds again later from another process
(the local Kafka broker and cluster nodes, the local Schema Registry): a pid file, a log file, and a
stop that escalates. Each service leads its own session (``start_new_session``), so a signal to
its process group reaches the JVM and anything it started.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (our own child not yet reaped) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def signal_group(pid: int, sig: int) -> None:
    """``sig`` to the process group ``pid`` leads, else to ``pid`` alone; nothing if it is gone."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child (else nothing), so it does not stay a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def running_pid(pid_file: Path) -> int | None:
    """The pid the file names, if that process runs."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def stop(pid_file: Path, what: str, timeout: float, progress: Callable[[str], None]) -> bool:
    """Stop the service ``pid_file`` names: SIGTERM, then SIGKILL after ``timeout`` seconds. False when
    none ran. The pid file goes either way."""
    pid = running_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    progress(f"stopping {what} (pid {pid})")
    signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        reap(pid)
        time.sleep(0.2)
    if pid_alive(pid):
        progress(f"{what} did not stop in {timeout:.0f}s; killing it")
        signal_group(pid, signal.SIGKILL)
        while pid_alive(pid):
            reap(pid)
            time.sleep(0.1)
    reap(pid)
    pid_file.unlink(missing_ok=True)
    return True


def log_tail(log_file: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
