"""Shared fixtures: marketpipe's own tests use the same pytest plugin downstream services get
(``marketpipe.testing``), so it cannot rot. One real Kafka broker per test session
(``KAFKA_BOOTSTRAP_SERVERS`` → Docker → the local launcher; ``MARKETPIPE_TEST_BROKER`` forces one);
each test gets its own topic prefix. Fixtures: kafka_broker, kafka_bootstrap, topic_prefix, mp_env,
mp_settings, mp_simulator, mp_pipeline.
"""

from __future__ import annotations

from pathlib import Path

# Also loaded through the ``pytest11`` entry point when marketpipe is installed; the entry point's
# name is the module name, so pytest registers it once either way.
pytest_plugins = ["marketpipe.testing"]

ROOT = Path(__file__).resolve().parents[1]

