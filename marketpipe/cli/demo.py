"""``marketpipe demo``."""

from __future__ import annotations

import argparse

from marketpipe.settings import Settings

DESCRIPTION = """\
The whole pipeline on this machine, from one command:

1. the Kafka broker (KAFKA_BOOTSTRAP_SERVERS, Docker, or the local launcher) and the topics, and
   a Schema Registry (SCHEMA_REGISTRY_URL, or Apicurio from the local launcher: every md.* and
   order.* record then in the Confluent wire format; without Java for it, or with --no-registry,
   Avro single-object encoding);
2. per provider a simulator — unless that provider's token is set, then the real service;
3. one producer per provider, the processor (Faust worker) and the trade consumer;
4. a few signed demo orders (one breaks a lot rule on purpose);
5. a live view refreshed in place until Ctrl-C or --seconds (a plain status line every few
   seconds when stdout is not a terminal); then a summary, and every process it started is
   stopped (children lead their own process groups: no orphans), the broker and registry too,
   whatever happened to its output (a closed pipe, Ctrl-C in a pipeline, a hang-up).

Logs of every process: $MARKETPIPE_HOME/demo/logs/<name>.log.
"""


def run(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe import demo

    return demo.run(settings, demo.DemoOptions(
        seconds=args.seconds, bar=args.bar, rate=args.rate, clock_speed=args.clock_speed, no_registry=args.no_registry,
        keep_broker=args.keep_broker, orders_after=args.orders_after))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline locally with a live view",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=0, help="stop after N seconds (default: until Ctrl-C)")
    p.add_argument("--bar", default="5s", help="bar length for the demo's aggregates, e.g. 5s or 1m (default 5s)")
    p.add_argument("--rate", type=int, default=200, help="simulated rows per second per provider (default 200)")
    p.add_argument("--clock-speed", type=float, default=1.0, help="simulated clock speed-up (default 1: real time)")
    p.add_argument("--no-registry", action="store_true",
                   help="no local Schema Registry: records in Avro single-object encoding")
    p.add_argument("--keep-broker", action="store_true",
                   help="leave a local broker the demo started running afterwards, and the local Schema "
                        "Registry with it (default: stop both)")
    p.add_argument("--orders-after", type=float, default=8.0, help="send the demo orders after N seconds (default 8)")
    p.set_defaults(func=run)
