"""``marketpipe topics create|check|list|acl``."""

from __future__ import annotations

import argparse

from marketpipe.settings import Settings


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.kafka import topics
    from marketpipe.kafka.broker import say

    try:
        result = topics.create_topics(settings.kafka.client_config(), prefix=settings.topic_prefix,
                                      replication_factor=args.replication_factor)
    except Exception as exc:  # a broker problem must read as one line
        say(f"marketpipe topics create: {exc} (is the broker up? `marketpipe kafka up`)")
        return 1
    for line in topics.describe_created(result, settings.topic_prefix):
        print(line)
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.kafka import durability, topics
    from marketpipe.kafka.broker import say

    names = [settings.topic(spec.name) for spec in topics.TOPICS]
    try:
        brokers, facts = durability.cluster_facts(settings.kafka.client_config(), names)
    except Exception as exc:  # a broker problem must read as one line
        say(f"marketpipe topics check: {' '.join(str(exc).split())[:200]} (is the broker up? `marketpipe kafka up`)")
        return 1
    findings = durability.topic_findings(facts, brokers, allow_single_broker=args.allow_single_broker)
    findings += durability.producer_findings()
    for finding in findings:
        print(finding)
    single = args.allow_single_broker and brokers == 1
    if single:
        say("one broker: replication factor 1 and min.insync.replicas 1 accepted (--allow-single-broker); "
            "a development setup, an acknowledged record lives on one disk only")
    if findings:
        say(f"{len(findings)} finding(s): weaker than RF {durability.DURABLE_REPLICAS}, min.insync.replicas "
            f"{durability.DURABLE_MIN_INSYNC}, no unclean election, idempotent acks=all producers "
            f"({brokers} broker(s))")
        return 1
    say(f"{len(names)} topics on {brokers} broker(s) and every producer config: "
        + ("single-broker default accepted" if single else "durable"))
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.kafka import topics
    from marketpipe.kafka.broker import metadata
    from marketpipe.kafka.quietlog import FIRST_ANSWER_SECONDS

    md = metadata(settings, FIRST_ANSWER_SECONDS)
    for spec in topics.TOPICS:
        name = settings.topic(spec.name)
        present = md.topics.get(name)
        state = f"{len(present.partitions)} partitions" if present else "missing"
        print(f"{name:32} {state:16} {spec.doc}")
    return 0


def cmd_acl(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.kafka import access
    from marketpipe.kafka.broker import say

    wanted = list(access.rules(settings))
    for rule in wanted:
        print(rule)
    if args.dry_run:
        return 0
    try:
        access.apply(settings.kafka.client_config(), wanted)
    except Exception as exc:  # a refusal (not the admin principal) or a dead broker: one line
        err = exc.args[0] if exc.args else None
        name = getattr(err, "name", None)
        why = name() if callable(name) else " ".join(str(exc).split())[:200]
        say(f"marketpipe topics acl: {why} (creating ACLs needs a super user: the admin principal)")
        return 1
    say(f"{len(wanted)} ACLs in place for prefix {settings.topic_prefix!r}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    tp = sub.add_parser("topics", help="create or list the declared topics, or grant their ACLs")
    tsub = tp.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    create = tsub.add_parser("create", help="create every declared topic that does not exist yet")
    create.add_argument("--replication-factor", type=int, default=-1,
                        help="replicas per partition (default: the broker's default.replication.factor)")
    create.set_defaults(func=cmd_create)
    check = tsub.add_parser(
        "check", help="report every topic or producer setting too weak to survive losing a broker; exit 1 if any",
        description="Lists, one line each, every declared topic with fewer than 3 replicas, "
                    "min.insync.replicas below 2 or unclean leader election on, and every producer config "
                    "marketpipe builds without enable.idempotence=true and acks=all. Exit 0 when there is "
                    "none, 1 otherwise.")
    check.add_argument("--allow-single-broker", action="store_true",
                       help="on a one-broker cluster accept replication factor 1 and min.insync.replicas 1 "
                            "(the local development default); changes nothing on a cluster")
    check.set_defaults(func=cmd_check)
    lst = tsub.add_parser("list", help="show the declared topics and whether they exist")
    lst.set_defaults(func=cmd_list)
    acl = tsub.add_parser("acl", help="grant each component the topic and group access it needs (needs the admin "
                                      "principal)")
    acl.add_argument("--dry-run", action="store_true", help="print the ACLs without creating them")
    acl.set_defaults(func=cmd_acl)
