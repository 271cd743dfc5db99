"""Prometheus endpoint shared by every long-running process."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)


def serve(port: int, what: str, host: str = "127.0.0.1") -> int | None:
    """Start the /metrics HTTP endpoint; port 0 picks a free one, -1 disables.

    It binds ``host`` (``MARKETPIPE_METRICS_HOST``): loopback unless configured otherwise, since
    the endpoint has no authentication. Returns the port actually bound and prints the address
    actually bound, so a user running several processes on one machine can find each one's
    metrics and sees when they are reachable from other machines.
    """
    if port < 0:
        return None
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host)
    address, bound = str(server.server_address[0]), server.server_port
    shown = f"[{address}]" if ":" in address else address
    everywhere = " (every interface)" if address in ("0.0.0.0", "::") else ""
    print(f"{what}: Prometheus metrics on http://{shown}:{bound}/metrics{everywhere}", file=sys.stderr, flush=True)
    return bound
