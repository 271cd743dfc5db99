"""Small HTTP helpers for handshakes (allocation, Engine.IO polling) with secrets masked in logs."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from marketpipe.producers.session import AuthFailed, RateLimited, Retry

_SECRET_PARAMS = re.compile(r"((?:token|apikey|api_key|ticket|pass)=)[^&]*", re.I)


def mask(url: str) -> str:
    """A URL fit for logs: secret query parameters replaced by ***."""
    return _SECRET_PARAMS.sub(r"\1***", url)


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 10.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status = exc.code
        if status in (401, 403):
            raise AuthFailed(f"{mask(url)}: HTTP {status}") from None
        if status == 429:
            raise RateLimited(f"{mask(url)}: HTTP 429") from None
        return status, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise Retry(f"{mask(url)}: {getattr(exc, 'reason', exc)}") from None

