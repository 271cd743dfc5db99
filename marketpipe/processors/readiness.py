"""Whether the processor can start and whether it has: the topics it needs exist, and its
consumer group holds partitions (the demo and the tests wait for that before producing). And
the Faust command line a worker is started with."""

from __future__ import annotations

from marketpipe.kafka import clients
from marketpipe.settings import Settings

#: marketpipe's log levels in Faust's spelling: one --log-level flag for every command
FAUST_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "ERROR": "error", "CRITICAL": "crit"}


def worker_argv(log_level: str, web_port: int = 0) -> list[str]:
    argv = ["worker", "--loglevel", FAUST_LEVELS[log_level.upper()]]
    return argv + (["--with-web", "--web-port", str(web_port)] if web_port else ["--without-web"])


def wait_until_consuming(settings: Settings, timeout: float = 60.0) -> bool:
    """True once every processor group these settings start (two for a split deployment) is stable
    with members holding partitions."""
    import time

    from marketpipe.processors.app import worker_groups

    admin, waiting = clients.admin(settings.kafka.client_config()), set(worker_groups(settings))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for group, described in admin.describe_consumer_groups(sorted(waiting)).items():  # one request for all
            try:
                desc = described.result(10)
                if str(desc.state).endswith("STABLE") and any(m.assignment.topic_partitions for m in desc.members):
                    waiting.discard(group)
            except Exception:  # noqa: BLE001 - the group does not exist yet
                pass
        if not waiting:
            return True
        time.sleep(0.5)
    return False


def processor_topics(settings: Settings) -> list[str]:
    """The declared topics the app reads or writes (prefixed)."""
    from marketpipe.kafka import topics

    return [settings.topic(t.name) for t in topics.TOPICS if t.name.startswith(("raw.", "md."))]


def missing_topics(settings: Settings) -> list[str]:
    """The declared topics the app reads or writes that the cluster does not have."""
    # a dead broker is one KafkaException, reported in one line by marketpipe.cli
    present = clients.admin(settings.kafka.client_config()).list_topics(timeout=30).topics
    return [t for t in processor_topics(settings) if t not in present]
