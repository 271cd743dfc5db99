"""Prometheus endpoint shared by every long-running process."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)


def serve(port: int, what: str) -> int | None:
    """Start the /metrics HTTP endpoint; port 0 picks a free one, -1 disables.

    Returns the port actually bound and prints it, so a user running several
    processes on one machine can find each one's metrics.
    """
    if port < 0:
        return None
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr="0.0.0.0")
    bound = server.server_port
    print(f"{what}: Prometheus metrics on http://127.0.0.1:{bound}/metrics", file=sys.stderr, flush=True)
    return bound
