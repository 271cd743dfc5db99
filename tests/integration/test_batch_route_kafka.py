"""A worker test of tests/integration/test_processor_app.py again, in the throughput profile: records, dead
letters and bars against a real broker with its larger fetches and linger. Both profiles read the
raw topics per fetch (marketpipe/processors/faust_consumer.py, ``batch_routed``), so ``kill -9`` and
restart, and two workers splitting the partitions, are covered in the default profile there."""

from __future__ import annotations

import pytest

from marketpipe import settings as settings_mod
from tests.integration.test_processor_app import (  # noqa: F401 - collected here with this module's worker_env
    test_frames_become_records_dead_letters_and_bars,
)


@pytest.fixture
def worker_env(mp_env: dict[str, str], mp_settings: settings_mod.Settings) -> dict[str, str]:
    return {**mp_env, "MARKETPIPE_PROCESSOR_SESSION_TIMEOUT": "6s", "MARKETPIPE_PROCESSOR_PROFILE": "throughput"}
