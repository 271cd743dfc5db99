#!/usr/bin/env python3
"""Container health probe of the marketpipe image (the Dockerfile's HEALTHCHECK).

    marketpipe-healthcheck              # GET http://127.0.0.1:$MARKETPIPE_METRICS_PORT/metrics
    marketpipe-healthcheck tcp:8001     # something listens on port 8001 (the simulators)

Standard library only and no marketpipe import: it runs every few seconds and must stay cheap.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request


def main(argv: list[str]) -> int:
    target = argv[1] if len(argv) > 1 else ""
    try:
        if target.startswith("tcp:"):
            with socket.create_connection(("127.0.0.1", int(target[4:])), timeout=3):
                return 0
        port = int(os.environ.get("MARKETPIPE_METRICS_PORT") or "9100")
        if port <= 0:  # metrics disabled or on a random port: nothing to probe, so do not flap
            return 0
        with urllib.request.urlopen(target or f"http://127.0.0.1:{port}/metrics", timeout=3) as resp:
            return 0 if resp.status == 200 else 1
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
