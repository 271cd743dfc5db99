"""``marketpipe kafka up|down|status``."""

from __future__ import annotations

import argparse

from marketpipe.settings import Settings

DESCRIPTION = """\
Start, stop or inspect the Kafka broker the pipeline uses.

Where the broker comes from, in order: KAFKA_BOOTSTRAP_SERVERS (someone else runs it), then a
Docker engine (the kafka service of docker-compose.yml, once `make images` built it), then the
local launcher (Apache Kafka from Maven Central, run on Java 17).
"""


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.kafka import broker

    if args.brokers != 1:
        return broker.up_cluster(settings, brokers=args.brokers, secure=args.secure, timeout=args.timeout)
    return broker.up(settings, local=args.local, secure=args.secure, timeout=args.timeout)


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.kafka import broker

    return broker.down(settings, local=args.local)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.kafka import broker

    return broker.status(settings)


def register(sub: argparse._SubParsersAction) -> None:
    kafka = sub.add_parser("kafka", help="start, stop or inspect the Kafka broker",
                           description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    ksub = kafka.add_subparsers(dest="kafka_command", metavar="ACTION", required=True)
    up = ksub.add_parser("up", help="start a single-node KRaft broker, or --brokers 3 nodes (idempotent), and print the "
                                      "bootstrap address")
    up.add_argument("--local", action="store_true", help="use the local launcher even if a Docker engine answers")
    up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness (default 90)")
    up.add_argument("--secure", action="store_true",
                    help="SASL_SSL listener, a local CA, SCRAM users per component and ACLs enforced; "
                         "prints where each component's settings are")
    up.add_argument("--brokers", type=int, default=1, metavar="N",
                    help="start a local cluster of N KRaft nodes (e.g. 3) instead of one broker: each node is "
                         "broker and controller, in <home>/kafka/node-<i>, on ports MARKETPIPE_KAFKA_PORT+2(i-1) "
                         "(client) and the next one (controller), with heap MARKETPIPE_KAFKA_NODE_HEAP "
                         "(default -Xms128m -Xmx384m per node; about 370 MB resident per node measured with the "
                         "declared topics at RF 3). With 3 or more: RF 3, min.insync.replicas=2, no unclean leader "
                         "election. Prints the bootstrap list of all nodes")
    up.set_defaults(func=cmd_up)
    down = ksub.add_parser("down", help="stop the broker (or every node of the cluster) started by `kafka up`")
    down.add_argument("--local", action="store_true", help="only the local launcher's broker")
    down.set_defaults(func=cmd_down)
    status = ksub.add_parser("status", help="say whether the broker runs (exit 0) or not (exit 1); for a local "
                                            "cluster each node, the active controller and under-replicated "
                                            "partitions")
    status.set_defaults(func=cmd_status)
