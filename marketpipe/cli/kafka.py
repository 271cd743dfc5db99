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
    up = ksub.add_parser("up", help="start a single-node KRaft broker (idempotent) and print its address")
    up.add_argument("--local", action="store_true", help="use the local launcher even if a Docker engine answers")
    up.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for readiness (default 90)")
    up.add_argument("--secure", action="store_true",
                    help="SASL_SSL listener, a local CA, SCRAM users per component and ACLs enforced; "
                         "prints where each component's settings are")
    up.set_defaults(func=cmd_up)
    down = ksub.add_parser("down", help="stop the broker started by `kafka up`")
    down.add_argument("--local", action="store_true", help="only the local launcher's broker")
    down.set_defaults(func=cmd_down)
    status = ksub.add_parser("status", help="say whether the broker runs (exit 0) or not (exit 1)")
    status.set_defaults(func=cmd_status)
