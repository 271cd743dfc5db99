"""`marketpipe registry up|status|down` with the real Apicurio launcher: idempotent, its URL
printed, and every socket it listens on bound to the loopback interface (Quarkus' management
interface would otherwise listen on all interfaces)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from marketpipe.runtime.localhost import free_port


def listening_addresses(pid: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} shows them) of the sockets ``pid`` listens on."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                out.add(cols[1].rsplit(":", 1)[0])
    return out


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def test_registry_up_is_idempotent_prints_its_url_and_listens_on_loopback_only(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETPIPE_", "SCHEMA_REGISTRY"))}
    port = free_port()
    env.update({"MARKETPIPE_HOME": str(tmp_path), "MARKETPIPE_REGISTRY_PORT": str(port)})

    def registry(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "marketpipe", "registry", *args], env=env, capture_output=True,
                              text=True, timeout=300)

    try:
        first = registry("up")
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == f"http://127.0.0.1:{port}/apis/ccompat/v7"
        again = registry("up")
        assert again.stdout == first.stdout and "already running" in again.stderr
        assert registry("status").returncode == 0
        pid = int((tmp_path / "registry" / "registry.pid").read_text())
        addresses = listening_addresses(pid)
        assert addresses and addresses <= LOOPBACK, addresses
    finally:
        down = registry("down")
    assert down.returncode == 0 and "stopped" in down.stderr
    assert registry("status").returncode == 1
