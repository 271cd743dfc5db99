"""``marketpipe process``: run one worker of the stream-processing app (processors.app)."""

from __future__ import annotations

import argparse
import os
import sys

from marketpipe.settings import Settings, parse_duration_ms


def run(args: argparse.Namespace, settings: Settings) -> int:
    # The app module loads the settings at import (``faust -A processors.app worker`` has no other
    # way in), so command-line values travel as the environment variables they override.
    for flag, variable in (("bar_interval", "MARKETPIPE_BAR_INTERVAL"), ("bar_grace", "MARKETPIPE_BAR_GRACE"),
                           ("bar_horizon", "MARKETPIPE_BAR_HORIZON")):
        value = getattr(args, flag)
        if value is not None:
            parse_duration_ms(value, "--" + flag.replace("_", "-"))
            os.environ[variable] = value
    if args.agents:
        os.environ["MARKETPIPE_PROCESSOR_AGENTS"] = args.agents
    missing = missing_topics(settings)
    if missing:
        print(f"marketpipe process: topics missing on {settings.kafka.bootstrap_servers}: {', '.join(missing)} "
              "(create them with: marketpipe topics create)", file=sys.stderr)
        return 2
    from marketpipe import metrics

    metrics.serve(settings.metrics_port, "processor")
    from processors.profile import event_loop, profile, tune_gc

    loop = event_loop(profile(settings.processor.profile))
    if loop and "faust" not in sys.modules:  # faust picks its loop when first imported
        os.environ.setdefault("FAUST_LOOP", loop)
    from processors.app import app
    tune_gc()  # processors/profile.py: the default thresholds cost a fifth of the worker's CPU

    argv = ["worker", "--loglevel", args.loglevel]
    argv += ["--with-web", "--web-port", str(args.web_port)] if args.web_port else ["--without-web"]
    sys.argv = ["marketpipe process", *argv]
    app.main()
    return 0


APP_ID = "marketpipe-processors"


def group_id(settings: Settings) -> str:
    """The processor app's id, which is its Kafka consumer group: one per topic prefix, so pipelines
    sharing a cluster do not share offsets, and one per agent set, so split deployments (normalize /
    bars) do not steal each other's topics."""
    agents = settings.processor.agents
    return (APP_ID + ("" if agents == "all" else f"-{agents}")
            + (f"-{settings.topic_prefix.rstrip('.')}" if settings.topic_prefix else ""))


def wait_until_consuming(settings: Settings, timeout: float = 60.0) -> bool:
    """True once the processor group is stable with members holding partitions."""
    import time

    from confluent_kafka.admin import AdminClient

    admin, group = AdminClient(settings.kafka.client_config()), group_id(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            desc = admin.describe_consumer_groups([group])[group].result(10)
            if str(desc.state).endswith("STABLE") and any(m.assignment.topic_partitions for m in desc.members):
                return True
        except Exception:  # noqa: BLE001 - the group does not exist yet
            pass
        time.sleep(0.5)
    return False


def missing_topics(settings: Settings) -> list[str]:
    """The declared topics the app reads or writes that the cluster does not have."""
    from confluent_kafka.admin import AdminClient

    from marketpipe import topics

    wanted = [settings.topic(t.name) for t in topics.TOPICS if t.name.startswith(("raw.", "md."))]
    present = AdminClient(settings.kafka.client_config()).list_topics(timeout=30).topics
    return [t for t in wanted if t not in present]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("process", help="run a stream-processing worker: raw frames -> md.* Avro records and bars",
                       description=__doc__)
    p.add_argument("--bar-interval", help="bar length: 60s, 5s, 1m ... (default: MARKETPIPE_BAR_INTERVAL or 60s)")
    p.add_argument("--bar-grace", help="how long past its end a window waits for late ticks before it is emitted "
                                       "(default: MARKETPIPE_BAR_GRACE or 2s)")
    p.add_argument("--bar-horizon", help="how late a tick may still correct an emitted bar "
                                         "(default: MARKETPIPE_BAR_HORIZON or 5m)")
    p.add_argument("--agents", choices=["all", "normalize", "bars"],
                   help="run only the normalize agents or only the bar agent, to scale them apart "
                        "(default: MARKETPIPE_PROCESSOR_AGENTS or all)")
    p.add_argument("--web-port", type=int, default=0, help="Faust web interface port (default: off)")
    p.add_argument("--loglevel", default="warn", choices=["crit", "error", "warn", "info", "debug"],
                   help="Faust worker log level (default warn)")
    p.set_defaults(func=run)
