"""``marketpipe process``."""

from __future__ import annotations

import argparse
import os
import sys

from marketpipe.processors.profile import PROFILES
from marketpipe.settings import Settings, parse_duration_ms

DESCRIPTION = """\
Run one worker of the stream-processing app: raw provider frames become md.* Avro records,
bars and feed status.

By default two worker processes start, one normalizing and one computing bars, so a bar batch
never delays ticks; --agents all runs both in this process, --agents normalize or bars one set
(start more of either to scale it out). --profile (MARKETPIPE_PROCESSOR_PROFILE) trades latency for CPU:
latency (default) processes each fetch as soon as it arrives, throughput lets fetches and
flushes grow for less CPU per record (figures: README, "Scaling out").
"""


def with_flags(args: argparse.Namespace, settings: Settings) -> Settings:
    """The settings with the command line's values in place of the environment's."""
    changes: dict[str, str] = {}
    for flag in ("bar_interval", "bar_grace", "bar_horizon"):
        value = getattr(args, flag)
        if value is not None:
            parse_duration_ms(value, "--" + flag.replace("_", "-"))  # names the flag, not the variable
            changes[f"MARKETPIPE_{flag.upper()}"] = value
    if args.agents:
        changes["MARKETPIPE_PROCESSOR_AGENTS"] = args.agents
    if args.profile:
        changes["MARKETPIPE_PROCESSOR_PROFILE"] = args.profile
    if args.trading_calendar:
        changes["MARKETPIPE_TRADING_CALENDAR"] = args.trading_calendar
    return settings.with_env(**changes)


def run(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_flags(args, settings)
    from marketpipe.processors.readiness import missing_topics, processor_topics, worker_argv

    missing = missing_topics(settings)
    if missing:
        print(f"marketpipe process: topics missing on {settings.kafka.bootstrap_servers}: {', '.join(missing)} "
              "(create them with: marketpipe topics create)", file=sys.stderr)
        return 2
    if settings.processor.agents == "split":
        from marketpipe.processors import split

        return split.run(split.children(settings, os.environ, args.log_level, args.web_port))
    import logging

    from marketpipe.kafka import durability

    durability.warn_if_weak(settings.kafka.client_config(), processor_topics(settings), "processor",
                            logging.getLogger("processors"))
    from marketpipe.runtime import metrics

    metrics.serve(settings.metrics_port, f"processor ({settings.processor.agents})", settings.metrics_host)
    from marketpipe.processors.profile import event_loop, profile, tune_gc

    loop = event_loop(profile(settings.processor.profile))
    if loop and "faust" not in sys.modules:  # Faust picks its event loop when first imported
        os.environ.setdefault("FAUST_LOOP", loop)
    from marketpipe.processors.app import build_app

    app = build_app(settings)
    sys.argv = ["marketpipe process", *worker_argv(args.log_level or settings.log_level, args.web_port)]
    tune_gc()  # processors/profile.py: the default thresholds cost a fifth of the worker's CPU
    app.main()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("process", help="run a stream-processing worker: raw frames -> md.* Avro records and bars",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bar-interval", help="bar length: 60s, 5s, 1m ... (default: MARKETPIPE_BAR_INTERVAL or 60s)")
    p.add_argument("--bar-grace", help="how long past its end a window waits for late ticks before it is emitted "
                                       "(default: MARKETPIPE_BAR_GRACE or 2s)")
    p.add_argument("--bar-horizon", help="how late a tick may still correct an emitted bar "
                                         "(default: MARKETPIPE_BAR_HORIZON or 5m)")
    p.add_argument("--agents", choices=["split", "all", "normalize", "bars"],
                   help="split: a worker process each for normalize and bars; all: both in this process; normalize "
                        "or bars: one set, to scale them apart (default: MARKETPIPE_PROCESSOR_AGENTS or split)")
    p.add_argument("--profile", choices=list(PROFILES),
                   help="latency: each fetch processed at once; throughput: larger fetches and flushes, less CPU "
                        "per record (default: MARKETPIPE_PROCESSOR_PROFILE or latency)")
    p.add_argument("--trading-calendar", choices=["exchange", "every-day"],
                   help="which days jvQuant's A-share clock times belong to: exchange (SSE/SZSE trading days) or "
                        "every-day, for a simulator feed on a weekend or holiday "
                        "(default: MARKETPIPE_TRADING_CALENDAR or exchange)")
    p.add_argument("--web-port", type=int, default=0, help="Faust web interface port (default: off)")
    p.set_defaults(func=run)
