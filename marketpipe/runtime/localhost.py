"""Facts about this machine that several commands need: a free TCP port, whether something
listens on one, whether a Docker engine answers."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000  # below this live the well-known services people run on a workstation


def ephemeral_range(path: Path | None = None) -> tuple[int, int]:
    """The ports the kernel hands to outgoing connections (Linux's default when unreadable)."""
    try:
        low, high = (int(x) for x in (path or _EPHEMERAL).read_text().split()[:2])
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _candidate(low: int, high: int, rng: random.Random) -> int:
    if low - _LOWEST >= 1000:
        return rng.randrange(_LOWEST, low)
    return rng.randrange(high + 1, 65536)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port nothing uses right now, for a server started a few seconds later.

    Not one the OS picks for port 0: that comes from the ephemeral range, where any outgoing
    connection may take it as its source port while a JVM is still starting, and the server then
    fails to bind. Random, so two callers rarely collide; another process may still take it."""
    low, high = ephemeral_range()
    rng = random.Random()
    for _ in range(200):
        port = _candidate(low, high, rng)
        if _bindable(port):
            return port
    with socket.socket() as s:  # every candidate busy: the OS's pick beats none
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``port`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def docker_engine_answers() -> bool:
    """Whether ``docker info`` succeeds: a Docker CLI is installed and its engine answers."""
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
