"""A plain (non-editable) install outside the checkout runs the commands: the wheel carries the
schemas, their history, the broker's pom and the compose file, and installs one top-level package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from marketpipe.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


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
                   "marketpipe/processors/app.py", "marketpipe/trader/consumer.py", "marketpipe/py.typed"):
        assert needed in names, needed


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
