"""Who may touch which topic: least privilege per component, declared once next to the topics.

Each :class:`Component` is one Kafka principal (a SCRAM user of ``marketpipe kafka up --secure``,
or whatever principal a production cluster maps the component to). ``marketpipe topics acl``
turns the declarations into ACLs under ``MARKETPIPE_TOPIC_PREFIX``; a broker with
``allow.everyone.if.no.acl.found=false`` then refuses everything else.

Why these grants:

* Consumer groups carry the pipeline's suffix (``Settings.group_id``), so a grant on a group is a
  grant on *this* pipeline's group only. Nobody but the trader may join (or commit offsets in) the
  trader's groups: a principal that could commit there could make the trader skip commands.
* Order senders and the operator are separate principals: a leaked sender password cannot flip
  the kill switch, and the operator's (who halts and resumes) cannot place orders.
* No ``IDEMPOTENT_WRITE`` cluster grant: since Kafka 3.0 (KIP-679) an idempotent producer may
  initialise its producer id with WRITE on any topic. Nothing here uses transactions.
* The processor's Faust app creates and owns its internal topics (``<app id>-...``: the
  assignor's leader topic, table changelogs), so it holds every operation on that name prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from marketpipe.kafka import clients, topics
from marketpipe.settings import Settings

#: the Faust app id of the processor, before the pipeline suffix (marketpipe.processors.app.APP_ID)
PROCESSOR_APP = "marketpipe-processors"


@dataclass(frozen=True)
class Component:
    """One principal and what it may do. A topic name ending in ``*`` is a name prefix (``raw.*``:
    every raw topic); topic names get the pipeline's topic prefix when the ACLs are made.

    ``groups`` are consumer groups of this pipeline (``Settings.group_id`` adds the suffix); one
    ending in ``*`` also covers the groups named after it (``marketpipe-processors*``: the bar
    restore group ``marketpipe-processors-<suffix>-bar-restore``), through the prefix
    ``<group>-``, so that pipeline ``x.`` gets nothing of pipeline ``xy.``. ``scratch_groups`` are name
    prefixes of throw-away groups the command line makes per run (``marketpipe-tail-<random>``);
    they only ever read with no committed offsets. ``owns`` are topic name prefixes (after the
    pipeline suffix, like groups) the component creates and uses with every operation."""

    user: str
    doc: str
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    scratch_groups: tuple[str, ...] = ()
    owns: tuple[str, ...] = ()


_PROCESSOR_APPS = tuple(f"{PROCESSOR_APP}{s}*" for s in ("", "-normalize", "-bars"))

COMPONENTS: tuple[Component, ...] = (
    Component("producer", "`marketpipe produce`: provider frames onto the raw topics, feed health",
              write=("raw.*", topics.MD_STATUS)),
    Component("processor", "`marketpipe process`: raw frames -> md.*, md.tick -> bars",
              read=("raw.*", topics.MD_TICK, topics.MD_STATUS, topics.MD_BAR_STATE, topics.MD_COMPLETENESS),
              write=("md.*",),
              groups=(*_PROCESSOR_APPS, "marketpipe-gap-feed"), owns=_PROCESSOR_APPS),
    Component("trader", "`marketpipe trade`: order.commands and the kill switch -> the broker -> order.events",
              read=(topics.ORDER_COMMANDS, topics.ORDER_CONTROL, topics.ORDER_LEDGER, topics.MD_QUOTE),
              write=(topics.ORDER_EVENTS, topics.ORDER_LEDGER, topics.ORDER_POSITIONS),
              groups=("marketpipe-trader", "marketpipe-trader-control", "marketpipe-trader-ledger-reader")),
    Component("sender", "`marketpipe order place|cancel`, a strategy: signed commands onto order.commands",
              write=(topics.ORDER_COMMANDS,)),
    Component("operator", "`marketpipe order halt|resume`: the kill switch on order.control",
              write=(topics.ORDER_CONTROL,)),
    Component("reader", "downstream services, `marketpipe tail|status|dlq`: market data and order events",
              read=("md.*", topics.ORDER_EVENTS), groups=("marketpipe-reader*",),
              scratch_groups=("marketpipe-client-", "marketpipe-tail-", "marketpipe-status-", "marketpipe-dlq-")),
)


def by_user(user: str) -> Component:
    for c in COMPONENTS:
        if c.user == user:
            return c
    raise KeyError(f"unknown component {user!r}; declared: {', '.join(c.user for c in COMPONENTS)}")


@dataclass(frozen=True)
class Rule:
    """One ALLOW ACL: ``principal`` may ``operation`` on the resource ``kind``/``name``."""

    principal: str  # "User:producer"
    kind: str  # "TOPIC" | "GROUP"
    name: str
    prefixed: bool
    operation: str  # "READ" | "WRITE" | "ALL"

    def __str__(self) -> str:
        pattern = "prefixed" if self.prefixed else "literal"
        return f"{self.principal:16} {self.operation:5} {self.kind.lower():5} {pattern:8} {self.name}"


def _name(name: str) -> tuple[str, bool]:
    return (name[:-1], True) if name.endswith("*") else (name, False)


def _groups(s: Settings, name: str) -> Iterator[tuple[str, bool]]:
    """(name, prefixed) of a pipeline group pattern: the group itself, and ``<group>-*`` for ``*``."""
    base, prefixed = _name(name)
    yield s.group_id(base), False
    if prefixed:
        yield s.group_id(base) + "-", True


def rules(s: Settings, components: tuple[Component, ...] = COMPONENTS,
          principal: Mapping[str, str] | None = None) -> Iterator[Rule]:
    """The ACLs the declarations mean for this pipeline (its topic prefix and group suffix).
    ``principal`` maps a component to its Kafka principal (default ``User:<component>``)."""
    for c in components:
        who = (principal or {}).get(c.user, f"User:{c.user}")
        for op, names in (("READ", c.read), ("WRITE", c.write)):
            for topic in names:
                name, prefixed = _name(topic)
                yield Rule(who, "TOPIC", s.topic(name), prefixed, op)
        for group in c.groups:
            for name, prefixed in _groups(s, group):
                yield Rule(who, "GROUP", name, prefixed, "READ")
        for scratch in c.scratch_groups:
            yield Rule(who, "GROUP", scratch, True, "READ")
        for owned in c.owns:  # Faust names its topics <app id>-<name>
            yield Rule(who, "TOPIC", s.group_id(_name(owned)[0]) + "-", True, "ALL")


def _binding(rule: Rule) -> Any:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    return AclBinding(ResourceType[rule.kind], rule.name,
                      ResourcePatternType.PREFIXED if rule.prefixed else ResourcePatternType.LITERAL,
                      rule.principal, "*", AclOperation[rule.operation], AclPermissionType.ALLOW)


def apply(client_config: Mapping[str, Any], wanted: list[Rule], timeout: float = 30.0) -> None:
    """Create the ACLs (creating one that exists is a no-op at the broker); the first refusal is
    raised as the client's KafkaException."""


    if not wanted:
        return
    admin = clients.admin(client_config)
    bindings = [_binding(r) for r in wanted]
    for future in admin.create_acls(bindings, request_timeout=timeout).values():
        future.result(timeout)
    _wait_in_force(admin, bindings, timeout)


def _wait_in_force(admin: Any, bindings: list[Any], timeout: float) -> None:
    """Return once the broker's authorizer has the new ACLs: the controller acknowledges them
    first, and a client starting right after ``topics acl`` was refused for a second or two."""
    import time

    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)
    deadline = time.monotonic() + timeout
    missing = set(bindings)
    while missing and time.monotonic() < deadline:
        missing -= set(admin.describe_acls(every, request_timeout=timeout).result(timeout))
        if missing:
            time.sleep(0.2)
    if missing:
        raise TimeoutError(f"{len(missing)} of {len(bindings)} ACLs not in force at the broker after {timeout:.0f} s")
