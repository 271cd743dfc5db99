"""``marketpipe produce jvquant|infoway|jin10``: one process = one provider connection.

Frames go unmodified to ``raw.<provider>``; see :mod:`marketpipe.producers.session` for reconnects and
:mod:`marketpipe.producers.sink` for the no-loss guarantees. Exit codes: 0 after Ctrl-C/SIGTERM with
everything flushed, 3 when the provider refused the credentials, 1 on other fatal errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys

from marketpipe.settings import Settings

log = logging.getLogger("producers")

DEFAULT_CODES = {"jvquant": "600519,000001", "infoway": "BTCUSDT,ETHUSDT", "jin10": "XAUUSD,XAGUSD,EURUSD,USOIL"}


def build_feed(args: argparse.Namespace, settings: Settings):
    p = settings.providers
    codes = [c for c in (args.codes or DEFAULT_CODES[args.provider]).split(",") if c.strip()]
    if args.provider == "jvquant":
        from marketpipe.producers.jvquant import JvQuantFeed

        if not p.jvquant_token:
            raise SystemExit("marketpipe produce jvquant: JVQUANT_TOKEN is not set")
        return JvQuantFeed(args.url or p.jvquant_base_url, p.jvquant_token.reveal(), codes,
                           args.levels.split(","), p.jvquant_market)
    if args.provider == "infoway":
        from marketpipe.producers.infoway import InfowayFeed

        if not p.infoway_api_key:
            raise SystemExit("marketpipe produce infoway: INFOWAY_API_KEY is not set")
        return InfowayFeed(args.url or p.infoway_ws_url, p.infoway_api_key.reveal(), p.infoway_business, codes,
                           pace_seconds=p.infoway_subscribe_interval)
    from marketpipe.producers.jin10 import Jin10Feed

    return Jin10Feed(args.url or p.jin10_url, codes)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from marketpipe import metrics, topics
    from marketpipe.producers.session import AuthFailed, Backoff, Session, Stopped
    from marketpipe.producers.sink import RawSink, SinkFatal

    feed = build_feed(args, settings)
    connection = args.connection_id or f"{args.provider}-{socket.gethostname()}-{os.getpid()}"
    sink = RawSink(settings, args.provider, settings.topic(topics.RAW_TOPICS[args.provider]))
    session = Session(feed, sink, connection, stall_seconds=args.stall_seconds,
                      rate_limit_seconds=args.rate_limit_seconds, backoff=Backoff(base=args.backoff_base,
                                                                                   cap=args.backoff_cap))
    metrics.serve(settings.metrics_port, f"producer {args.provider}", settings.metrics_host)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        session.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("producing %s frames to %s as connection %s", args.provider, sink.topic, connection)
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
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("provider", choices=["jvquant", "infoway", "jin10"])
    p.add_argument("--codes", help="comma-separated provider codes (jvquant: 600519,000001; infoway: BTCUSDT; "
                                   "jin10: XAUUSD)")
    p.add_argument("--levels", default="lv1,lv2", help="jvQuant levels to subscribe: lv1, lv2, lv10 (default lv1,lv2)")
    p.add_argument("--url", help="override the provider address (default from settings)")
    p.add_argument("--connection-id", help="stable id of this connection (Kafka key; default provider-host-pid)")
    p.add_argument("--stall-seconds", type=float, default=30.0, help="reconnect when no frame arrives for N s")
    p.add_argument("--rate-limit-seconds", type=float, default=60.0, help="minimum wait after a rate-limit answer")
    p.add_argument("--backoff-base", type=float, default=0.5, help="first reconnect delay bound (s)")
    p.add_argument("--backoff-cap", type=float, default=30.0, help="largest reconnect delay bound (s)")
    p.add_argument("--flush-seconds", type=float, default=30.0, help="how long to wait for Kafka on shutdown")
    p.set_defaults(func=run)
