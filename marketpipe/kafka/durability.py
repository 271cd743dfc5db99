"""What "durable" means for marketpipe's topics and producers, and ``marketpipe topics check``.

An acknowledged record must survive the loss of any one broker. That takes three things at once:

* every partition on three brokers (replication factor 3),
* ``min.insync.replicas=2``, so ``acks=all`` waits for a second copy before saying yes,
* ``unclean.leader.election.enable=false``, so a replica that missed acknowledged records never
  becomes leader and truncates them away;

and, on the client, producers with ``acks=all`` and ``enable.idempotence=true`` (a retried send is
written once). :func:`topic_findings` and :func:`producer_findings` report what falls short; they
work on plain facts, so the rules are tested without a broker.

The producer rule reads marketpipe's own source: every ``Producer({...})`` call whose config is a
dict literal, directly or through a local variable assigned one in the same function. A ``**``
spread after the two keys could still override them; marketpipe's spreads are the shared client
settings and the caller's extra options, which set neither.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

DURABLE_REPLICAS = 3
DURABLE_MIN_INSYNC = 2

#: Producers that never write a record, by (path under the package, enclosing function): why.
EXEMPT_PRODUCERS: Mapping[tuple[str, str], str] = {
    ("kafka/security.py", "refusal"): "a connection probe that never produces",
}


@dataclass(frozen=True)
class Finding:
    subject: str  # a topic name, or "producer <file>:<line>"
    reason: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.reason}"


@dataclass(frozen=True)
class TopicFacts:
    """What the cluster says about one topic; ``replication_factor`` is its smallest partition's."""

    name: str
    exists: bool
    replication_factor: int = 0
    min_insync_replicas: int = 0
    unclean_leader_election: bool = False


def replication_for(brokers: int) -> int:
    """Replicas per partition on a cluster of ``brokers``: three when there are three or more."""
    return min(DURABLE_REPLICAS, brokers)


def durable_topic_config(brokers: int) -> dict[str, str]:
    """Topic configs ``topics create`` adds on a cluster of three or more brokers (none below:
    a single development broker keeps its defaults)."""
    if brokers < DURABLE_REPLICAS:
        return {}
    return {"min.insync.replicas": str(DURABLE_MIN_INSYNC), "unclean.leader.election.enable": "false"}


def topic_findings(facts: Iterable[TopicFacts], brokers: int, allow_single_broker: bool = False) -> list[Finding]:
    """One finding per topic setting weaker than durable. ``allow_single_broker`` accepts what a
    one-broker cluster cannot do better (RF 1, min.insync.replicas 1); nothing else."""
    single = allow_single_broker and brokers == 1
    out = []
    for t in facts:
        if not t.exists:
            out.append(Finding(t.name, "missing: a producer would auto-create it with the broker's defaults "
                                       "(run `marketpipe topics create`)"))
            continue
        if t.replication_factor < DURABLE_REPLICAS and not single:
            out.append(Finding(t.name, f"replication factor {t.replication_factor} < {DURABLE_REPLICAS}: "
                                       "losing one broker loses or stops its partitions"))
        if t.min_insync_replicas < DURABLE_MIN_INSYNC and not single:
            out.append(Finding(t.name, f"min.insync.replicas={t.min_insync_replicas} < {DURABLE_MIN_INSYNC}: "
                                       "acks=all is satisfied by one copy"))
        if t.unclean_leader_election and not single:
            out.append(Finding(t.name, "unclean.leader.election.enable=true: an out-of-sync replica may "
                                       "become leader and drop acknowledged records"))
    return out


def startup_warning(brokers: int, facts: Iterable[TopicFacts]) -> str | None:
    """The one line a process logs at start when a topic it uses is less durable than its cluster
    allows (the rules of :func:`topic_findings`), or None. None on fewer than three brokers: a
    development broker cannot do better, and saying so at every start would teach people to
    ignore the line. A missing topic is left to the process's own check (the processor refuses
    to start; a producer's write would create it with the cluster's defaults, durable here)."""
    if brokers < DURABLE_REPLICAS:
        return None
    weak = topic_findings([f for f in facts if f.exists], brokers)
    if not weak:
        return None
    return (f"durability weaker than this cluster of {brokers} brokers allows: " + "; ".join(map(str, weak))
            + " (`marketpipe topics check` lists every topic)")


# -- producers in marketpipe's source ------------------------------------------------------


def _is_producer_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return (isinstance(f, ast.Name) and f.id == "Producer") or (isinstance(f, ast.Attribute) and f.attr == "Producer")


def _literal_keys(d: ast.Dict) -> dict[str, Any]:
    """The dict literal's constant keys and values (last one wins, as at run time)."""
    out: dict[str, Any] = {}
    for k, v in zip(d.keys, d.values):
        if isinstance(k, ast.Constant) and isinstance(k.value, str):
            out[k.value] = v.value if isinstance(v, ast.Constant) else v
    return out


def _is_factory_call(node: ast.AST) -> bool:
    """``durable_producer_config(...)``: marketpipe.kafka.clients' one durable producer config."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
    return name == "durable_producer_config"


def _config_keys(call: ast.Call, scope: ast.AST) -> dict[str, Any] | None:
    """The settings a Producer call is given, as far as the source says them: a dict literal, or the
    durable factory (its DURABLE keys, then the literal keys of its extras, which come after them);
    either directly or through a name assigned earlier in the same function. None: unreadable."""
    arg = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "config"), None)
    if isinstance(arg, ast.Name):  # conf = ...; Producer(conf) in the same function
        found = None
        for node in ast.walk(scope):
            if (isinstance(node, ast.Assign) and node.lineno < call.lineno
                    and any(isinstance(t, ast.Name) and t.id == arg.id for t in node.targets)):
                if found is None or node.lineno > found.lineno:
                    found = node
        arg = found.value if found is not None else None
    if isinstance(arg, ast.Dict):
        return _literal_keys(arg)
    if isinstance(arg, ast.Call) and _is_factory_call(arg):
        from marketpipe.kafka.clients import DURABLE

        extra = arg.args[1] if len(arg.args) > 1 else next((k.value for k in arg.keywords if k.arg == "extra"), None)
        return {**DURABLE, **(_literal_keys(extra) if isinstance(extra, ast.Dict) else {})}
    return None


def config_findings(keys: Mapping[str, Any]) -> list[str]:
    """Why a producer config is not durable (empty when it is)."""
    why = []
    if str(keys.get("enable.idempotence")).lower() != "true":
        why.append("enable.idempotence is not true")
    if str(keys.get("acks")).lower() not in ("all", "-1"):
        why.append("acks is not all")
    return why


def _calls(tree: ast.AST) -> Iterator[tuple[ast.Call, ast.AST, str]]:
    """Every Producer call with its enclosing function (or the module) and that function's name."""
    def visit(node: ast.AST, scope: ast.AST, name: str) -> Iterator[tuple[ast.Call, ast.AST, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(child, child, child.name)
            else:
                if _is_producer_call(child):
                    yield child, scope, name  # type: ignore[misc]
                yield from visit(child, scope, name)
    yield from visit(tree, tree, "<module>")


def source_producer_findings(source: str, relpath: str) -> list[Finding]:
    out = []
    for call, scope, func in _calls(ast.parse(source)):
        if (relpath, func) in EXEMPT_PRODUCERS:
            continue
        subject = f"producer {relpath}:{call.lineno}"
        keys = _config_keys(call, scope)
        if keys is None:
            out.append(Finding(subject, "config is neither durable_producer_config(...) nor a dict literal this "
                                        "check can read"))
            continue
        out += [Finding(subject, why) for why in config_findings(keys)]
    return out


def producer_findings(package: Path | None = None) -> list[Finding]:
    """Findings for every producer config built in marketpipe's source (the installed package)."""
    if package is None:
        import marketpipe

        package = Path(marketpipe.__file__).parent
    out = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "Producer(" in text:
            out += source_producer_findings(text, path.relative_to(package).as_posix())
    return out


# -- facts from a cluster ------------------------------------------------------------------


def cluster_facts(client_config: Mapping[str, str], names: list[str], timeout: float = 10.0) -> tuple[int, list[TopicFacts]]:
    """(number of brokers, facts per topic) from the cluster's metadata and topic configs."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    from marketpipe.kafka.quietlog import rdkafka_logger

    admin = AdminClient({**client_config, **rdkafka_logger()})
    md = admin.list_topics(timeout=timeout)
    present = [n for n in names if n in md.topics and md.topics[n].error is None]
    configs: dict[str, Any] = {}
    if present:
        futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in present],
                                         request_timeout=timeout)
        configs = {res.name: fut.result(timeout) for res, fut in futures.items()}
    facts = []
    for name in names:
        if name not in present:
            facts.append(TopicFacts(name, exists=False))
            continue
        conf = configs[name]
        facts.append(TopicFacts(
            name, True,
            replication_factor=min((len(p.replicas) for p in md.topics[name].partitions.values()), default=0),
            min_insync_replicas=int(conf["min.insync.replicas"].value),
            unclean_leader_election=str(conf["unclean.leader.election.enable"].value).lower() == "true"))
    return len(md.brokers), facts


def warn_if_weak(client_config: Mapping[str, str], names: list[str], who: str, log: Any, timeout: float = 5.0) -> None:
    """Once at a process's start: log :func:`startup_warning` for the topics it uses. Never stops
    the process: a cluster that does not answer in ``timeout`` is the process's own business to
    report (it waits or fails on its first real request), so this says so at DEBUG only."""
    try:
        brokers, facts = cluster_facts(client_config, names, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - a check, not a gate
        log.debug("%s: durability of %s not checked: %s", who, ", ".join(names), exc)
        return
    line = startup_warning(brokers, facts)
    if line is not None:
        log.warning("%s: %s", who, line)
