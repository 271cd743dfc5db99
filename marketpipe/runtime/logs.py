"""Logging set-up shared by every marketpipe process."""

from __future__ import annotations

import logging
import sys

from marketpipe.kafka.quietlog import COMMAND_LOGGER, quiet_repeats

FORMAT = "%(asctime)s %(levelname)-7s %(name)s[%(process)d] %(message)s"


def setup(level: str = "INFO") -> None:
    """Log to stderr, one line per event, with the process id (several processes share a terminal)."""
    root = logging.getLogger()
    if not any(getattr(h, "_marketpipe", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._marketpipe = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    quiet_repeats(root)  # an outage must not print the same retry line 70 times a second
    root.setLevel(level.upper())
    # librdkafka's own chatter and aiokafka's are useful at DEBUG only
    for noisy in ("aiokafka", "kafka", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # a one-shot command reports its client's failure itself, in one line; DEBUG shows the detail
    logging.getLogger(COMMAND_LOGGER).setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.CRITICAL)
