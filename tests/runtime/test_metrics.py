"""The Prometheus endpoint binds loopback unless told otherwise, and prints what it really binds."""

from __future__ import annotations

import socket

import pytest

from marketpipe import settings
from marketpipe.runtime import metrics


def _answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def test_metrics_bind_loopback_by_default_and_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    s = settings.load({})
    assert s.metrics_host == "127.0.0.1"
    port = metrics.serve(0, "test", s.metrics_host)
    assert port and _answers("127.0.0.1", port)
    # 127.0.0.2 is this machine too (all of 127/8 is loopback), but not the address bound
    assert not _answers("127.0.0.2", port)
    assert f"test: Prometheus metrics on http://127.0.0.1:{port}/metrics\n" == capsys.readouterr().err


def test_metrics_on_every_interface_only_when_configured_and_printed_as_such(capsys) -> None:
    s = settings.load({"MARKETPIPE_METRICS_HOST": "0.0.0.0"})
    port = metrics.serve(0, "test", s.metrics_host)
    assert port and _answers("127.0.0.2", port)
    assert f"http://0.0.0.0:{port}/metrics (every interface)" in capsys.readouterr().err
