"""jvQuant server allocation, shared by the quote producer and the trade client.

The documents disagree on the path (protocols.md §0): seeds/001 and 004 print ``/server``, the
official SDK and the current wiki use ``/query/server``. Both are tried; the second only when the
first does not answer like an allocation endpoint (HTTP 404, not a JSON object), so a refusal
(bad token, rate limit) is never asked twice. ``code`` counts only where present; ``server``
comes with or without a scheme (§1.1).
"""

from __future__ import annotations

import urllib.parse
from typing import Any, Callable

PATHS = ("/query/server", "/server")

#: fetch(url) -> (HTTP status, parsed JSON body or None when the body is not JSON)
Fetch = Callable[[str], "tuple[int, Any]"]


class AllocationRefused(Exception):
    """No server was allocated; the message is the provider's (or why none was found)."""


def server_address(body: Any, scheme: str) -> str:
    """The allocated address from one answer, with ``scheme`` added when it has none."""
    if not isinstance(body, dict):
        raise AllocationRefused("the answer is not a JSON object")
    code = body.get("code")
    server = str(body.get("server") or "").strip()
    if (code is not None and str(code) != "0") or not server:
        message = body.get("msg") or body.get("message") or (f"code {code}" if code is not None else "no server")
        raise AllocationRefused(str(message))
    return server if "://" in server else f"{scheme}://{server}"


def allocate(base_url: str, *, market: str, kind: str, token: str, scheme: str, fetch: Fetch) -> str:
    """Ask ``base_url`` for a ``kind`` server (websocket, trade, sql); the address has a scheme."""
    query = urllib.parse.urlencode({"market": market, "type": kind, "token": token})
    missing = []
    for path in PATHS:
        status, body = fetch(f"{base_url.rstrip('/')}{path}?{query}")
        if isinstance(body, dict) and status != 404:
            return server_address(body, scheme)
        missing.append(f"{path} HTTP {status}")
    raise AllocationRefused(f"no allocation endpoint answered ({', '.join(missing)})")
