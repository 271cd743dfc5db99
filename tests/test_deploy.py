"""Deployment files are consistent with the code: no cluster or Docker engine is needed.

`docker compose config` is not available on our machines (no compose plugin), so the compose
file's structure is checked here: YAML parses, every service that runs the marketpipe image
runs a real sub-command, every variable it sets is a documented setting, ordering is sound.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from marketpipe import settings
from marketpipe.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
# Sub-commands of pipeline parts whose code may land after this file; each must be registered
# by its module once present (checked below for those that are present).
PIPELINE_COMMANDS = {"sim": "simulators.cli", "produce": "producers.cli", "process": "processors.cli",
                     "trade": "trader.cli"}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def registered_commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def marketpipe_services(doc: dict) -> dict[str, dict]:
    return {name: svc for name, svc in doc["services"].items() if svc.get("image") == "marketpipe:latest"}


def test_compose_services_run_real_commands() -> None:
    import importlib.util

    doc = compose()
    services = marketpipe_services(doc)
    assert {"topics", "producer-jvquant", "producer-infoway", "producer-jin10", "processor", "trader",
            "sim-jvquant", "sim-infoway", "sim-jin10"} <= set(services)
    registered = registered_commands()
    for name, svc in services.items():
        command = svc["command"][0]
        if command in PIPELINE_COMMANDS and importlib.util.find_spec(PIPELINE_COMMANDS[command]) is None:
            continue  # that part has not landed; its module is listed in marketpipe.cli.COMMAND_MODULES
        assert command in registered, f"service {name} runs unknown command {command!r}"


def test_compose_env_vars_are_documented_settings() -> None:
    documented = {name for name, _, _ in settings.DOCUMENTED}
    for name, svc in marketpipe_services(compose()).items():
        for var in svc.get("environment", {}):
            assert var in documented or var.startswith("KAFKA_OPT_"), f"{name}: {var} is not a setting"


def test_compose_ordering_and_scaling() -> None:
    doc = compose()
    services = doc["services"]
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}) or {}:
            assert dep in services, f"{name} depends on missing {dep}"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["producer-jvquant"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert services["trader"]["deploy"]["replicas"] == 1  # never two traders
    for sim in ("sim-jvquant", "sim-infoway", "sim-jin10"):
        assert services[sim]["profiles"] == ["sim"]
    # the in-network address the pipeline uses is one of the broker's listeners
    listeners = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "kafka:29092" in listeners
    assert services["processor"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092"


def test_dockerfile_runs_marketpipe_as_non_root() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^USER (?!root)\S+", text, re.M)
    assert 'ENTRYPOINT ["marketpipe"]' in text
    for package in ("marketpipe", "producers", "processors", "schemas", "simulators", "trader"):
        assert f"COPY {package} ./{package}" in text, package
