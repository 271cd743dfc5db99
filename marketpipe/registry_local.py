"""A real Schema Registry on this machine, without Docker: Apicurio Registry on Java 17.

Apicurio Registry 2.x is published on Maven Central as a runnable Quarkus application
(``io.apicurio:apicurio-registry-app:<version>``, classifier ``all``, type ``tar.gz``). It is
fetched once per version with Maven into ``~/.cache/marketpipe/apicurio-registry-<version>``,
unpacked there, and run with in-memory storage: its subjects live as long as the process,
which is what a demo or a test session wants (a stopped registry forgets every schema id, so
records written with it are unreadable by a registry started later; see the README).

It serves the Confluent-compatible API at ``/apis/ccompat/v7``, the URL printed by
``marketpipe registry up`` and the value for ``SCHEMA_REGISTRY_URL``. Both of its HTTP
interfaces (the API and Quarkus' management interface, which would otherwise listen on every
interface on port 9000) are bound to 127.0.0.1. 3.x needs Java 21, hence 2.x.

``up`` is idempotent: a registry this home already runs is reused, never doubled.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from marketpipe.kafka.local import MIN_JAVA, LauncherError, java_major, port_open
from marketpipe.runtime import processes
from marketpipe.runtime.localhost import free_port
from marketpipe.settings import Settings

VERSION = "2.6.13.Final"
ARTIFACT = f"io.apicurio:apicurio-registry-app:{VERSION}:tar.gz:all"
#: the plugin goal runs without a project; its version pinned so a fetch is reproducible
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
CCOMPAT_PATH = "/apis/ccompat/v7"


@dataclass
class RegistryStatus:
    running: bool
    pid: int | None
    url: str
    log: Path
    detail: str


class LocalRegistry:
    """One Apicurio Registry process, owned by one ``home`` directory."""

    def __init__(self, home: Path, cache_dir: Path, port: int = 8081, heap: str = "-Xms64m -Xmx384m",
                 host: str = "127.0.0.1", progress: Callable[[str], None] = lambda msg: None) -> None:
        self.home = Path(home).absolute()
        self.dir = self.home / "registry"
        self.port = port
        self.heap = heap
        self.host = host
        self.progress = progress
        self.app = Path(cache_dir) / f"apicurio-registry-{VERSION}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{CCOMPAT_PATH}"

    @property
    def pid_file(self) -> Path:
        return self.dir / "registry.pid"

    @property
    def log_file(self) -> Path:
        return self.dir / "registry.log"

    @property
    def runner(self) -> Path:
        return self.app / f"apicurio-registry-app-{VERSION}-runner.jar"

    # -- lifecycle ----------------------------------------------------------------------
    def pid(self) -> int | None:
        return processes.running_pid(self.pid_file)

    def status(self) -> RegistryStatus:
        pid = self.pid()
        if pid is None:
            return RegistryStatus(False, None, self.url, self.log_file, "not running")
        if self._answers():
            return RegistryStatus(True, pid, self.url, self.log_file, f"running (pid {pid})")
        return RegistryStatus(False, pid, self.url, self.log_file, f"process {pid} alive but {self.url} not answering")

    def up(self, timeout: float = 120.0) -> str:
        """Start the registry unless this home already runs it; return its Confluent-compatible URL."""
        current = self.status()
        if current.running:
            self.progress(f"Schema Registry already running at {self.url} (pid {current.pid})")
            return self.url
        if current.pid is not None:  # started a moment ago and still booting
            self._wait_ready(current.pid, timeout)
            return self.url
        if port_open(self.host, self.port):
            raise LauncherError(f"port {self.port} is already used by another process; "
                                "set MARKETPIPE_REGISTRY_PORT to a free port or SCHEMA_REGISTRY_URL to that registry")
        if not shutil.which("java"):
            raise LauncherError(f"Java is not installed: Apicurio Registry needs Java {MIN_JAVA}+ "
                                "(apt-get install openjdk-17-jre-headless), or set SCHEMA_REGISTRY_URL to a running registry")
        major = java_major()
        if major < MIN_JAVA:
            raise LauncherError(f"Java {major} found; Apicurio Registry {VERSION} needs Java {MIN_JAVA}+")
        self.ensure_app()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.progress(f"starting Apicurio Registry {VERSION} at {self.url}; log: {self.log_file}")
        cmd = ["java", *self.heap.split(), "-Djava.awt.headless=true",
               f"-Dquarkus.http.host={self.host}", f"-Dquarkus.http.port={self.port}",
               # the management interface (health, metrics) listens on 0.0.0.0:9000 by default
               f"-Dquarkus.management.host={self.host}", f"-Dquarkus.management.port={free_port()}",
               "-Dquarkus.log.console.color=false",
               "-jar", str(self.runner)]
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=self.dir)
        self.pid_file.write_text(str(proc.pid))
        self._wait_ready(proc.pid, timeout)
        self.progress(f"Schema Registry ready at {self.url} (pid {proc.pid})")
        return self.url

    def down(self, timeout: float = 20.0) -> bool:
        """Stop the registry (SIGTERM, then SIGKILL after ``timeout``). False if none ran."""
        return processes.stop(self.pid_file, "the Schema Registry", timeout, self.progress)

    # -- helpers ------------------------------------------------------------------------
    def ensure_app(self) -> None:
        """Fetch and unpack the application once per version (``.complete`` marks a whole unpack)."""
        marker = self.app / ".complete"
        if marker.exists() and self.runner.is_file():
            return
        mvn = shutil.which("mvn")
        if not mvn:
            raise LauncherError("Maven (mvn) is not installed: it fetches Apicurio Registry from Maven Central "
                                "(apt-get install maven), or set SCHEMA_REGISTRY_URL to a running registry")
        download = self.app.with_name(self.app.name + ".download")
        shutil.rmtree(download, ignore_errors=True)
        download.mkdir(parents=True)
        self.progress(f"fetching Apicurio Registry {VERSION} (~140 MB) from Maven Central (once) into {self.app}")
        result = subprocess.run([mvn, "-q", "-B", f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={ARTIFACT}",
                                 f"-DoutputDirectory={download}"], capture_output=True, text=True, cwd=download)
        archives = list(download.glob("*.tar.gz"))
        if result.returncode != 0 or not archives:
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            shutil.rmtree(download, ignore_errors=True)
            raise LauncherError("mvn could not fetch Apicurio Registry (is Maven Central reachable?):\n  "
                                + "\n  ".join(tail))
        shutil.rmtree(self.app, ignore_errors=True)
        self.app.mkdir(parents=True)
        with tarfile.open(archives[0]) as archive:
            archive.extractall(self.app, filter="data")
        shutil.rmtree(download, ignore_errors=True)
        if not self.runner.is_file():
            raise LauncherError(f"the Apicurio archive holds no {self.runner.name}")
        marker.write_text(VERSION)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/subjects", timeout=2) as resp:
                return isinstance(json.loads(resp.read()), list)
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def _wait_ready(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not processes.pid_alive(pid):
                processes.reap(pid)
                self.pid_file.unlink(missing_ok=True)
                raise LauncherError(f"the Schema Registry exited during start-up; last log lines:\n{self.log_tail()}")
            if self._answers():
                return
            time.sleep(0.5)
        raise LauncherError(f"the Schema Registry did not answer in {timeout:.0f}s; log: {self.log_file}\n"
                            f"{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        return processes.log_tail(self.log_file, lines)


def local_registry(settings: Settings, progress: Callable[[str], None] | None = None) -> LocalRegistry:
    """The registry of this MARKETPIPE_HOME; progress lines on stderr unless ``progress`` says otherwise."""
    return LocalRegistry(home=settings.home, cache_dir=settings.local.cache_home / "marketpipe",
                         port=settings.local.registry_port, progress=progress or _say)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
