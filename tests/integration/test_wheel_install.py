"""A plain (non-editable) install outside the checkout runs the commands: the wheel carries the
schemas, their history, the broker's pom and the compose file, and installs one top-level package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from marketpipe import providers
from marketpipe.testing import free_port
from tests.support.paths import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    str(ROOT)], check=True, timeout=300, capture_output=True)
    [built] = out.glob("marketpipe-*.whl")
    return built


def test_the_wheel_installs_one_package_with_everything_the_commands_read(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"marketpipe"}
    for needed in ("marketpipe/schemas/Tick.avsc", "marketpipe/schemas/history/Bar.v2.avsc",
                   "marketpipe/_resources/kafka-pom.xml", "marketpipe/_resources/docker-compose.yml",
                   "marketpipe/processors/app.py", "marketpipe/trader/consumer.py", "marketpipe/py.typed",
                   "marketpipe/providers/__init__.py", "marketpipe/providers/entry.py", "marketpipe/trader/trade_api.py",
                   "marketpipe/providers/jvquant/trade_api.py", "marketpipe/providers/jvquant/trade_simulator.py",
                   # the rooms and the command package: main.py is the console script's entry point
                   "marketpipe/cli/main.py", "marketpipe/cli/kafka.py", "marketpipe/kafka/clients.py",
                   "marketpipe/market/chinatime.py", "marketpipe/runtime/resources.py"):
        assert needed in names, needed
    for provider in providers.names():  # each provider's folder ships whole: the registry imports it
        for module in ("__init__", "protocol", "feed", "decode", "symbols", "simulator"):
            assert f"marketpipe/providers/{provider}/{module}.py" in names, (provider, module)


def test_the_wheel_declares_its_license_as_an_spdx_expression(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        [meta] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        headers = zf.read(meta).decode()
    assert "License-Expression: Apache-2.0" in headers.splitlines()


def test_building_prints_no_deprecation_warning_about_the_license(tmp_path: Path) -> None:
    # -v shows what the build backend prints; setuptools warns there about a TOML-table license
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    output = built.stdout + built.stderr
    assert "project.license" not in output and "License classifiers are deprecated" not in output


def test_commands_run_from_an_install_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    # the test venv already holds every dependency: a venv that sees its site-packages, with the
    # wheel installed on top, is a non-editable install without a network round
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, timeout=300, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_", "PYTHON"))}
    port = free_port()
    env.update({"MARKETPIPE_HOME": str(work / "home"), "MARKETPIPE_KAFKA_PORT": str(port),
                "MARKETPIPE_METRICS_PORT": "-1"})
    python = str(venv / "bin" / "python")

    def marketpipe(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run([python, "-m", "marketpipe", *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=timeout)

    where = subprocess.run([python, "-c", "import marketpipe.processors.app as m; print(m.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0 and str(site) in where.stdout and str(ROOT) not in where.stdout, where.stderr
    frame = work / "row.txt"
    frame.write_text("lv2_600519=09:30:00.120,1234567,1572.12,100")
    decoded = marketpipe("decode", "jvquant", str(frame), "--opcode", "text", "--recv-ns", "1717394400000000000")
    assert decoded.returncode == 0 and '"price":1572.12' in decoded.stdout, decoded.stderr
    up = marketpipe("kafka", "up", "--local")  # the launcher, with the pom the wheel carries
    try:
        assert up.returncode == 0, up.stderr
        assert marketpipe("topics", "create").returncode == 0
        tail = marketpipe("tail", "md.tick", "--from-beginning", "--idle-exit", "3")
        assert tail.returncode == 0, tail.stderr
    finally:
        down = marketpipe("kafka", "down", "--local")
    assert down.returncode == 0, down.stderr


PIPELINE_ONLY = ("faust", "websocket", "aiohttp", "rich", "orjson", "prometheus_client", "uvloop", "aiokafka")


def core_install(wheel: Path, tmp_path: Path, extra_dists: tuple[str, ...] = ()) -> Path:
    """A venv holding the wheel and exactly the distributions `pip install marketpipe` would bring
    (its unconditional Requires-Dist, with theirs), plus `extra_dists`; linked from the test venv,
    so no network round. Returns its python."""
    from importlib import metadata

    from packaging.requirements import Requirement

    venv = tmp_path / "core-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, timeout=300, capture_output=True)
    with zipfile.ZipFile(wheel) as zf:
        [meta] = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        requires = [line.split(":", 1)[1].strip() for line in zf.read(meta).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    wanted = [Requirement(r) for r in requires]
    todo = [r.name for r in wanted if r.marker is None] + list(extra_dists)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        dist = metadata.distribution(name)
        for file in dist.files or ():
            top = file.parts[0]
            if top.endswith(".pth") or top == "..":
                continue
            source, target = Path(str(dist.locate_file(top))), site / top
            if source.exists() and not target.exists():
                target.symlink_to(source)
        todo += [Requirement(r).name for r in dist.requires or () if Requirement(r).marker is None]
    return venv / "bin" / "python"


def test_the_core_install_has_the_client_and_plugin_without_the_pipeline(wheel: Path, tmp_path: Path) -> None:
    python = str(core_install(wheel, tmp_path, extra_dists=("pytest",)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MARKETPIPE_", "PYTHON"))}
    env["MARKETPIPE_HOME"] = str(tmp_path / "home")
    probe = ("import importlib.util, sys, marketpipe.client, marketpipe.testing\n"
             f"print([m for m in {PIPELINE_ONLY!r} if importlib.util.find_spec(m) is not None])")
    found = subprocess.run([python, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]", f"the core install brings pipeline-only modules: {found.stdout}"
    # a record the pipeline wrote reads back as a typed Tick with nothing but the core
    use = ("from marketpipe import settings\n"
           "from marketpipe.schemas.codec import from_settings\n"
           "from marketpipe.client import RecordDeserializer, Tick\n"
           "codec = from_settings(settings.load({}))\n"
           "rec = {'provider': 'jvquant', 'symbol': '600519.SH', 'venue_symbol': '600519', 'event_time': 1,\n"
           "       'receive_time_ns': 2, 'price': 1572.12, 'size': 100.0, 'amount': None, 'side': 'BUY',\n"
           "       'trade_id': '1234567', 'session': None, 'parser_version': 'x',\n"
           "       'source': {'topic': 'raw.jvquant', 'partition': 0, 'offset': 7, 'index': 0}}\n"
           "tick = RecordDeserializer(codec)(codec.encode('Tick', rec))\n"
           "assert isinstance(tick, Tick) and tick.price == 1572.12, tick\n"
           "print('ok')\n")
    read = subprocess.run([python, "-c", use], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert read.returncode == 0 and read.stdout.strip() == "ok", read.stderr[-2000:]
    plugin = subprocess.run([python, "-m", "pytest", "--fixtures", "-p", "marketpipe.testing", "-q"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert "kafka_bootstrap" in plugin.stdout, plugin.stdout[-2000:] + plugin.stderr[-2000:]
    # a pipeline command on the core install: one line naming the extra, no traceback
    demo = subprocess.run([python, "-m", "marketpipe", "sim", "jvquant", "--port", "0"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert demo.returncode != 0
    assert 'pip install "marketpipe[pipeline]"' in demo.stderr and "Traceback" not in demo.stderr, demo.stderr
    helped = subprocess.run([python, "-m", "marketpipe", "--help"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert helped.returncode == 0 and "demo" in helped.stdout, helped.stderr
