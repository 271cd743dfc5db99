"""Facts about this machine that several commands need: a free TCP port, whether something
listens on one, whether a Docker engine answers."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; another process may take it later)."""
    with socket.socket() as s:
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
