"""``marketpipe produce PROVIDER``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys

from marketpipe import providers
from marketpipe.market import markethours
from marketpipe.settings import Settings

log = logging.getLogger("producers")

DESCRIPTION = """\
Connect to one provider and push every frame, unmodified, to its raw Kafka topic (raw.PROVIDER).
One process is one provider connection; it reconnects with backoff and loses no frame it received.

Exit codes: 0 after Ctrl-C/SIGTERM with everything flushed, 3 when the provider refused the
credentials, 1 on other fatal errors.
"""


def _split(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def default_connection(provider: str, line: str | None) -> str:
    """The connection id (Kafka key) when ``--connection-id`` is not given. Both lines of an A/B pair
    must share it, so that their frames share one partition and its order; one host's name would
    differ between them."""
    if line:
        return f"{provider}-ab"
    return f"{provider}-{socket.gethostname()}-{os.getpid()}"


def build_feed(args: argparse.Namespace, settings: Settings):
    entry = providers.get(args.provider)
    options = providers.FeedOptions(codes=_split(args.codes) if args.codes else entry.default_codes, url=args.url,
                                    levels=_split(args.levels))
    return entry.feed(settings, options)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe.kafka import durability
    from marketpipe.producers.session import AuthFailed, Backoff, Session, Stopped
    from marketpipe.producers.sink import RawSink, SinkFatal
    from marketpipe.runtime import metrics

    feed = build_feed(args, settings)
    connection = args.connection_id or default_connection(args.provider, args.line)
    sink = RawSink(settings, args.provider, settings.topic(providers.get(args.provider).raw_topic))
    session = Session(feed, sink, connection, stall_seconds=args.stall_seconds,
                      rate_limit_seconds=args.rate_limit_seconds, backoff=Backoff(base=args.backoff_base,
                                                                                   cap=args.backoff_cap),
                      calendar=markethours.ALWAYS if args.market_hours == "always" else None,
                      subscription_silence=settings.producer.subscription_silence, line=args.line or "")
    metrics.serve(settings.metrics_port, f"producer {args.provider}", settings.metrics_host)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        session.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("producing %s frames to %s as connection %s", args.provider, sink.topic, connection)
    durability.warn_if_weak(settings.kafka.client_config(), [sink.topic, sink.status_topic],
                            f"producer {args.provider}", log)
    code = 0
    try:
        session.run()
    except AuthFailed as exc:
        print(f"marketpipe produce {args.provider}: authentication failed: {exc} "
              "(check the token / API key; not retrying)", file=sys.stderr)
        code = 3
    except Stopped as exc:
        print(f"marketpipe produce {args.provider}: {exc} (not retrying)", file=sys.stderr)
        code = 3
    except SinkFatal as exc:
        print(f"marketpipe produce {args.provider}: {exc}", file=sys.stderr)
        code = 1
    finally:
        unflushed = sink.close(args.flush_seconds)
        log.info("stopped after %d frames (%d delivered, %d failed, %d unflushed)", sink.sent, sink.delivered,
                 sink.failed, unflushed)
    return code or (1 if unflushed or sink.failed else 0)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("produce", help="connect to a provider and push every frame to its raw Kafka topic",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("provider", choices=providers.names())
    p.add_argument("--codes", help="comma-separated provider codes (default: "
                                   + "; ".join(f"{e.name}: {','.join(e.default_codes)}" for e in providers.PROVIDERS)
                                   + ")")
    p.add_argument("--levels", default="lv1,lv2", help="jvQuant levels to subscribe: lv1, lv2, lv10 (default lv1,lv2)")
    p.add_argument("--url", help="override the provider address (default from settings)")
    p.add_argument("--connection-id", help="stable id of this connection (Kafka key; default provider-host-pid)")
    p.add_argument("--line", choices=["A", "B"],
                   help="A/B capture: this process is one of two lines of the same connection (meant for two "
                        "hosts); frames carry a line header and the default connection id is PROVIDER-ab, shared "
                        "by both lines (give both the same --connection-id to run several pairs)")
    p.add_argument("--stall-seconds", type=float, default=30.0,
                   help="reconnect when no frame arrives for N s while the market is open")
    p.add_argument("--market-hours", choices=["auto", "always"], default="auto",
                   help="when a silent connection counts as stalled: auto = the provider's market calendar "
                        "(no reconnects over lunch, nights, weekends); always = around the clock (simulators)")
    p.add_argument("--rate-limit-seconds", type=float, default=60.0, help="minimum wait after a rate-limit answer")
    p.add_argument("--backoff-base", type=float, default=0.5, help="first reconnect delay bound (s)")
    p.add_argument("--backoff-cap", type=float, default=30.0, help="largest reconnect delay bound (s)")
    p.add_argument("--flush-seconds", type=float, default=30.0, help="how long to wait for Kafka on shutdown")
    p.set_defaults(func=run)
