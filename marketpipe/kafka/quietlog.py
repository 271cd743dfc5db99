"""Logs that stay readable when things go wrong.

* :class:`RepeatFilter` collapses a line that repeats (a broker outage makes every client
  retry many times a second) into its first occurrence plus one summary per window:
  ``... (repeated 143 times in 10 s)``. Lines differing only in numbers count as the same line.
* :func:`rdkafka_logger` routes librdkafka's own log lines (which otherwise go straight to
  stderr, ~20 a second per client while a broker is down) through Python logging, hence
  through the filter.
  Every command's and every service's clients are built with it.
* :func:`warn_plaintext` says once per destination that credentials travel unencrypted.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.parse
from functools import lru_cache
from typing import Any, Callable

_NUMBERS = re.compile(r"\d+")


class RepeatFilter(logging.Filter):
    """Let the first of a run of identical lines through; count the rest for ``window`` seconds.

    The first line after the window that repeats it carries the count of what was held back.
    One instance per handler (a filter shared by two handlers would count each line twice).
    """

    def __init__(self, window: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 2048) -> None:
        super().__init__()
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # key -> [window start, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string is the handler's problem, not ours
            return True
        key = (record.name, record.levelno, _NUMBERS.sub("#", text)[:300])
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.window:
                seen[1] += 1
                return False
            if len(self._seen) >= self.max_keys:
                self._forget(now)
            self._seen[key] = [now, 0]
        if seen is not None and seen[1]:
            record.msg = f"{text} (repeated {int(seen[1])} times in {now - seen[0]:.0f} s)"
            record.args = ()
        return True

    def _forget(self, now: float) -> None:
        stale = [k for k, (start, _) in self._seen.items() if now - start >= self.window]
        for k in stale or list(self._seen):
            del self._seen[k]


def quiet_repeats(logger: logging.Logger | None = None, window: float = 10.0) -> None:
    """Give every handler of ``logger`` (default: root) a :class:`RepeatFilter`, once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter(window))


#: Seconds a command waits for the broker's first answer (metadata) before it reports the broker as
#: down, in one line: a healthy broker answers in milliseconds, and librdkafka's own default wait
#: made `tail` sit 15 s on a dead one.
FIRST_ANSWER_SECONDS = 5.0


#: The logger of one-shot commands' clients (tail, dlq, replay, status): their failure is the
#: command's one-line error, so librdkafka's own lines show at DEBUG only (see logs.setup).
COMMAND_LOGGER = "rdkafka.command"


def rdkafka_logger(name: str = "rdkafka") -> dict[str, Any]:
    """Client config that sends librdkafka's log lines to Python logging (served on poll/flush)."""
    return {"logger": logging.getLogger(name)}


def command_rdkafka_logger() -> dict[str, Any]:
    """:func:`rdkafka_logger` for a one-shot command's client."""
    return rdkafka_logger(COMMAND_LOGGER)


def warn_plaintext(url: str, what: str) -> None:
    """Warn (once per process and destination) when ``url`` would carry credentials unencrypted."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    host = parts.hostname or ""
    # nobody is on the path to this machine itself (the simulators of `marketpipe demo`)
    loopback = host == "localhost" or host == "::1" or host.startswith("127.")
    if parts.scheme.lower() in ("http", "ws") and not loopback:
        _warn_once(what, parts.scheme.lower(), host)


@lru_cache(maxsize=64)  # the "once": a reconnect loop must not repeat the warning
def _warn_once(what: str, scheme: str, host: str) -> None:
    logging.getLogger("marketpipe.security").warning(
        "%s sent over plain %s to %s: anyone on the path can read it (an %s:// URL would encrypt it)",
        what, scheme, host or "?", "https" if scheme == "http" else "wss")
