"""Deployment files are consistent with the code: no cluster or Docker engine is needed.

These are the structural checks that run everywhere. Where a Docker engine answers, the images are
built (`make images`) and the compose stack really runs (tests/deploy/docker/test_compose_smoke.py); here the
compose file's structure is checked: YAML parses, every service that runs the marketpipe image runs
a real sub-command, every variable it sets is a documented setting, ordering is sound, and the
images are multi-stage, non-root and health-checked.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import yaml

from marketpipe import settings
from marketpipe.cli.main import build_parser
from tests.support.paths import ROOT

APP_IMAGE = "marketpipe/marketpipe:local"
KAFKA_IMAGE = "marketpipe/kafka:local"
# Sub-commands of pipeline parts whose code may land after this file; each must be registered
# by its module once present (checked below for those that are present).
PIPELINE_COMMANDS = {"sim": "marketpipe.cli.sim", "produce": "marketpipe.cli.produce",
                     "process": "marketpipe.cli.process", "trade": "marketpipe.cli.trade"}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def registered_commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def marketpipe_services(doc: dict) -> dict[str, dict]:
    return {name: svc for name, svc in doc["services"].items() if svc.get("image") == APP_IMAGE}


def stages(dockerfile: Path) -> list[str]:
    """The Dockerfile's stages, each from its FROM line on."""
    text = dockerfile.read_text()
    return re.split(r"^(?=FROM )", text, flags=re.M)[1:]


def test_compose_services_run_real_commands() -> None:
    import importlib.util

    doc = compose()
    services = marketpipe_services(doc)
    assert {"topics", "producer-jvquant", "producer-infoway", "producer-jin10", "processor", "trader",
            "sim-jvquant", "sim-infoway", "sim-jin10"} <= set(services)
    registered = registered_commands()
    for name, svc in services.items():
        if "entrypoint" in svc:
            continue  # not the marketpipe command (checked below)
        command = svc["command"][0]
        if command in PIPELINE_COMMANDS and importlib.util.find_spec(PIPELINE_COMMANDS[command]) is None:
            continue  # that part has not landed; its module is listed in marketpipe.cli.main.COMMAND_MODULES
        assert command in registered, f"service {name} runs unknown command {command!r}"


def test_compose_trader_reference_is_the_demos() -> None:
    from marketpipe import demo

    services = compose()["services"]
    job = services["trader-reference"]
    entry = " ".join(job["entrypoint"])
    function = re.search(r"marketpipe\.demo as d; d\.(\w+)\(", entry)
    assert function and callable(getattr(demo, function.group(1))), entry
    path = job["command"][0]
    assert services["trader"]["environment"]["MARKETPIPE_TRADER_REFERENCE"].endswith(f":-{path}}}")
    # the job writes into the volume the trader reads, at the image's MARKETPIPE_HOME
    assert job["volumes"] == services["trader"]["volumes"] == ["trader-home:/var/lib/marketpipe"]
    assert services["trader"]["depends_on"]["trader-reference"]["condition"] == "service_completed_successfully"


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
    for name in ("producer-jvquant", "producer-infoway", "producer-jin10", "processor", "trader"):
        assert services[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully", name
    assert services["trader"]["deploy"]["replicas"] == 1  # never two traders
    # `docker-compose up -d` starts the simulators too: no profile, and a health check the
    # producers wait for
    for sim, producer in (("sim-jvquant", "producer-jvquant"), ("sim-infoway", "producer-infoway"),
                          ("sim-jin10", "producer-jin10")):
        assert "profiles" not in services[sim]
        port = services[sim]["command"][services[sim]["command"].index("--port") + 1]
        assert services[sim]["healthcheck"]["test"] == ["CMD", "marketpipe-healthcheck", f"tcp:{port}"]
        assert services[producer]["depends_on"][sim]["condition"] == "service_healthy"
    # Compose v1 (Debian's docker-compose 1.29) rejects a top-level `name`
    assert set(doc) <= {"services", "volumes", "networks", "x-marketpipe"}


def test_compose_broker_listeners_are_consistent() -> None:
    services = compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"] == KAFKA_IMAGE and kafka["build"]["dockerfile"] == "deploy/kafka/Dockerfile"
    env = kafka["environment"]
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(advertised) <= set(listeners) <= set(protocols)
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    assert "CONTROLLER" not in advertised and listeners["CONTROLLER"].startswith("127.0.0.1:")
    # the in-network address the pipeline uses is one of the broker's listeners
    assert advertised["INTERNAL"] == "kafka:29092"
    assert services["processor"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092"
    # the host listener is published on the port it advertises, and only on loopback
    host_port = advertised["HOST"].removeprefix("localhost:")
    assert host_port == "${KAFKA_HOST_PORT:-9092}"
    assert kafka["ports"] == [f"127.0.0.1:{host_port}:{listeners['HOST'].rsplit(':', 1)[1]}"]


def test_dockerfile_runs_marketpipe_as_non_root() -> None:
    dockerfile = ROOT / "deploy" / "Dockerfile"
    text = dockerfile.read_text()
    assert re.search(r"^USER (?!root)\S+", text, re.M)
    assert 'ENTRYPOINT ["marketpipe"]' in text
    assert "COPY marketpipe ./marketpipe" in text  # one package: producers, processors, ... live inside it


def test_images_are_multi_stage_small_and_health_checked() -> None:
    for dockerfile, default_base in ((ROOT / "deploy" / "Dockerfile", "python:3.11-slim"),
                                     (ROOT / "deploy" / "kafka" / "Dockerfile", "eclipse-temurin:17-jre")):
        text = dockerfile.read_text()
        assert f"ARG BASE_IMAGE={default_base}" in text, dockerfile
        *build, runtime = stages(dockerfile)
        assert build, f"{dockerfile}: one stage only"
        assert runtime.startswith("FROM ${BASE_IMAGE}\n"), dockerfile
        assert re.search(r"^COPY --from=\w+ ", runtime, re.M), dockerfile
        # no package managers' tools or compilers in the image that runs
        for tool in ("pip install", "mvn ", "maven", "gcc", "build-essential", "python3-venv"):
            assert tool not in runtime, f"{dockerfile}: {tool!r} in the runtime stage"
        assert re.search(r"^USER (?!root)\S+", runtime, re.M), dockerfile
        assert re.search(r"^HEALTHCHECK .*CMD \[", runtime, re.M), dockerfile
    kafka = (ROOT / "deploy" / "kafka" / "Dockerfile").read_text()
    assert "COPY deploy/kafka/pom.xml" in kafka and "dependency:copy-dependencies" in kafka


def kafka_image_config(env: dict[str, str]) -> dict[str, str]:
    """The server.properties the broker image's entrypoint writes for this environment."""
    import subprocess

    script = ROOT / "deploy" / "kafka" / "kafka-entrypoint.sh"
    out = subprocess.run(["bash", str(script), "--print-config"], env={"PATH": "/usr/bin:/bin", **env},
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def test_kafka_image_defaults_equal_the_local_launchers(tmp_path: Path) -> None:
    from marketpipe.kafka.local import LocalKafka

    broker = LocalKafka(home=tmp_path, port=9092)
    broker.dir.mkdir(parents=True)
    launcher = dict(line.split("=", 1) for line in broker._write_config().read_text().splitlines())
    image = kafka_image_config({})
    # where it listens and stores differs between a container and a home directory; the rest is equal
    per_place = {"listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}
    assert set(image) == set(launcher)
    assert {k: v for k, v in image.items() if k not in per_place} == \
        {k: v for k, v in launcher.items() if k not in per_place}
    assert image["advertised.listeners"] == "PLAINTEXT://localhost:9092"
    assert image["log.dirs"] == "/var/lib/kafka/data"  # the image's VOLUME


def test_kafka_image_maps_kafka_variables_to_properties() -> None:
    image = kafka_image_config({
        "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://127.0.0.1:39092",  # what a test container sets
        "KAFKA_NUM_PARTITIONS": "3",
        "KAFKA_CONFLUENT_SUPPORT__METRICS___ENABLE": "false",
        "KAFKA_HEAP_OPTS": "-Xmx256m", "KAFKA_CLUSTER_ID": "abc", "OTHER": "x",
    })
    assert image["advertised.listeners"] == "PLAINTEXT://127.0.0.1:39092"
    assert image["num.partitions"] == "3"
    assert image["confluent.support_metrics-enable"] == "false"
    assert not {"heap.opts", "cluster.id", "other"} & set(image)
    assert image["listeners"] == "PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093"


def test_healthcheck_probe_answers_on_a_listening_port_only() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy" / "healthcheck.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)  # type: ignore[union-attr]
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert probe.main(["marketpipe-healthcheck", f"tcp:{port}"]) == 0
    assert probe.main(["marketpipe-healthcheck", f"tcp:{port}"]) == 1  # closed now


# ---- Kubernetes (deploy/k8s): no cluster here, so structure and schemas are checked offline ----
K8S = ROOT / "deploy" / "k8s"


def k8s_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def base_resources() -> list[dict]:
    kust = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    docs = []
    for name in kust["resources"]:
        assert (K8S / "base" / name).is_file(), f"kustomization lists missing {name}"
        docs += k8s_docs(K8S / "base" / name)
    return docs


def test_core_manifests_are_schema_valid() -> None:
    import kubernetes_validate

    core = [d for d in base_resources() if d["apiVersion"] in ("v1", "apps/v1")]
    assert {d["kind"] for d in core} == {"Namespace", "ConfigMap", "Secret", "Deployment", "Service"}
    for doc in core:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_overlay_points_at_the_base() -> None:
    overlay = yaml.safe_load((K8S / "overlays" / "prod" / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["../../base"]
    names = {(d["kind"], d["metadata"]["name"]) for d in base_resources()}
    for patch in overlay["patches"]:
        assert (patch["target"]["kind"], patch["target"]["name"]) in names


def test_k8s_env_and_commands_match_the_code() -> None:
    import importlib.util

    documented = {name for name, _, _ in settings.DOCUMENTED}
    docs = base_resources()
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert set(config["data"]) <= documented
    assert set(secret["stringData"]) <= documented
    assert set(secret["stringData"].values()) == {"REPLACE_ME"}  # a template: no secret in the repo
    registered = registered_commands()
    for dep in (d for d in docs if d["kind"] == "Deployment"):
        spec = dep["spec"]["template"]["spec"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            command = container["args"][0]
            module = PIPELINE_COMMANDS.get(command)
            if module is None or importlib.util.find_spec(module) is not None:
                assert command in registered, f"{dep['metadata']['name']} runs unknown {command!r}"
            for env in container.get("env", []):
                assert env["name"] in documented, env["name"]
                ref = env["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "marketpipe-secrets" and ref["key"] in secret["stringData"]


def test_single_trader_and_single_connection_producers() -> None:
    deps = {d["metadata"]["name"]: d for d in base_resources() if d["kind"] == "Deployment"}
    for name in ("trader", "producer-jvquant", "producer-infoway", "producer-jin10"):
        assert deps[name]["spec"]["replicas"] == 1, name
        assert deps[name]["spec"]["strategy"]["type"] == "Recreate", name


def test_keda_scales_processors_within_the_raw_partitions() -> None:
    from marketpipe.kafka import topics

    scaled = next(d for d in base_resources() if d["kind"] == "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "processor"
    raw_partitions = min(topics.by_name(t).partitions for t in topics.RAW_TOPICS.values())
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= raw_partitions
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "kafka"


def test_normalize_and_bars_deploy_apart_and_keda_watches_the_normalize_group() -> None:
    from marketpipe import settings as settings_mod
    from marketpipe.processors.app import group_id

    deps = {d["metadata"]["name"]: d for d in base_resources() if d["kind"] == "Deployment"}
    args = {name: deps[name]["spec"]["template"]["spec"]["containers"][0]["args"] for name in ("processor",
                                                                                                "processor-bars")}
    assert args == {"processor": ["process", "--agents", "normalize"], "processor-bars": ["process", "--agents", "bars"]}
    scaled = next(d for d in base_resources() if d["kind"] == "ScaledObject")
    group = group_id(settings_mod.load({"MARKETPIPE_PROCESSOR_AGENTS": "normalize"}))
    assert scaled["spec"]["triggers"][0]["metadata"]["consumerGroup"] == group


def test_strimzi_topics_are_generated_from_the_declared_list() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_topics", K8S / "gen_topics.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    committed = (K8S / "base" / "topics.yaml").read_text()
    assert committed == gen.render(), "run: python deploy/k8s/gen_topics.py"
    from marketpipe.kafka import topics

    docs = k8s_docs(K8S / "base" / "topics.yaml")
    assert {d["spec"]["topicName"]: d["spec"]["partitions"] for d in docs} == \
        {t.name: t.partitions for t in topics.TOPICS}


def test_grafana_dashboard_queries_only_metrics_the_code_exports() -> None:
    import json
    import re

    from prometheus_client import REGISTRY

    import marketpipe.processors.metrics  # noqa: F401 - registers the processor metrics
    import marketpipe.producers.metrics  # noqa: F401
    import marketpipe.trader.metrics  # noqa: F401

    grafana = ROOT / "deploy" / "grafana"
    board = json.loads((grafana / "marketpipe.json").read_text())
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    exported = {m.name + suffix for m in REGISTRY.collect() for suffix in suffixes.get(m.type, ("",))}
    queried = {name for panel in board["panels"] for target in panel["targets"]
               for name in re.findall(r"\bmarketpipe_[a-z_]+", target["expr"])}
    assert queried and queried <= exported, sorted(queried - exported)
    for family in ("producer", "processor", "trader"):
        assert any(f"marketpipe_{family}_" in q for q in queried), family


def test_compose_schema_registry_is_the_local_launcher_s_apicurio_bound_to_loopback() -> None:
    from marketpipe import registry_local

    svc = compose()["services"]["schema-registry"]
    assert svc["profiles"] == ["registry"]
    assert all(p.startswith("127.0.0.1:") for p in svc["ports"])  # published on the host's loopback only
    flags = " ".join(svc["entrypoint"])
    assert "-Dquarkus.management.host=127.0.0.1" in flags  # else 0.0.0.0:9000
    assert f"apicurio-registry-app-{registry_local.VERSION}-runner.jar" in flags
    assert any(f"apicurio-registry-{registry_local.VERSION}" in v for v in svc["volumes"])


def test_compose_variables_are_ones_compose_v1_can_interpolate() -> None:
    # Debian's docker-compose 1.29 takes ${VAR}, ${VAR:-default}, ${VAR:?error} with literal text
    # default only: a nested ${A:-${B}} is left as text and a volume becomes an undeclared named one
    # ("Named volume ... is used in service ... but no declaration was found"), failing `up`.
    text = (ROOT / "docker-compose.yml").read_text()
    for ref in re.findall(r"\$\{([^}]*)\}", text):
        assert "${" not in ref and "$" not in ref, f"nested variable in docker-compose.yml: ${{{ref}}}"
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*(:?[-?][^$]*)?", ref), f"compose v1 cannot read ${{{ref}}}"
    # A host path in a volume must be a path once interpolated (absolute, ./ or ~/), not a volume name
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes", []):
            expanded = re.sub(r"\$\{[A-Z_][A-Z0-9_]*:?-([^}]*)\}", r"\1", volume).split(":", 1)[0]
            source = volume
            assert expanded.startswith(("/", "./", "~/")) or re.fullmatch(r"[a-z][a-z0-9_-]*", expanded), \
                f"{name}: volume source {source!r} is neither a path nor a declared volume name"
            if re.fullmatch(r"[a-z][a-z0-9_-]*", expanded):
                assert expanded in compose().get("volumes", {}), f"{name}: named volume {expanded} is not declared"
