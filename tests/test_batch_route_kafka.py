"""The worker tests of tests/test_processor_app.py again, in the throughput profile, whose normalize
path reads the raw topics per fetch (marketpipe/processors/fastpath.py, ``batch_routed``): records and
dead letters, ``kill -9`` and restart losing nothing, and two workers splitting the partitions
(rebalances) agreeing with one, against a real broker."""

from __future__ import annotations

import pytest

from marketpipe import settings as settings_mod
from tests.test_processor_app import (  # noqa: F401 - collected here with this module's worker_env
    test_frames_become_records_dead_letters_and_bars,
    test_kill_9_and_restart_lose_nothing_and_windows_still_close,
    test_two_workers_split_the_work_and_agree_with_one,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def worker_env(mp_env: dict[str, str], mp_settings: settings_mod.Settings) -> dict[str, str]:
    return {**mp_env, "MARKETPIPE_PROCESSOR_SESSION_TIMEOUT": "6s", "MARKETPIPE_PROCESSOR_PROFILE": "throughput"}
